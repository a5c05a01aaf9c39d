"""How a worker is born: the fork server and its spare worker, and a worker's start
(bound to its parent, limited and confined before any plugin code runs)."""
