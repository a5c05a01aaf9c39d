import logging


class Plugin:
    def run(self):
        stderr = logging.lastResort.stream      # the real sys.stderr (an io.TextIOWrapper)
        buf = stderr.buffer
        raw = buf.raw if hasattr(buf, "raw") else buf
        FileIO = type(raw)                      # io.FileIO, a class of the blocked 'io' module
        f = FileIO("/etc/hostname")
        return {"FileIO": repr(FileIO), "TextIOWrapper": repr(type(stderr)),
                "hostname": f.read().decode().strip()}
