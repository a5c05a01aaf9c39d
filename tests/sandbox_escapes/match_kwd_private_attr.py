import logging
from pathlib import Path


# `Path('.')._flavour` is refused by visit_Attribute's private-attribute rule (test corpus),
# but match keyword patterns only go through _attribute_problem (no private check).
class Plugin:
    def run(self):
        match Path("."):
            case object(_flavour=fl):
                pass
        match logging.getLogger("x"):
            case object(_cache=c, manager=m):
                pass
        match m:
            case object(loggerDict=d):
                pass
        return {"Path._flavour": repr(fl), "Logger._cache": repr(c),
                "worker loggers": sorted(d)[:8]}
