import contextlib
from pathlib import Path


# contextlib.chdir (3.11) is os.chdir: changes the worker process's cwd (os functionality,
# no file read by itself). Low severity.
class Plugin:
    def run(self):
        before = str(Path.cwd())
        cm = contextlib.chdir("/etc")
        with cm:
            inside = str(Path.cwd())
            rel = Path("hostname").read_text().strip()
        return {"before": before, "inside": inside, "relative read": rel}
