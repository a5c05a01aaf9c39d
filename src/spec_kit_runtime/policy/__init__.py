"""Pure decisions, without I/O or clocks of their own (time is passed in): restart
intensity and backoff, resource limits and their verdicts, health, call figures, scopes and
patterns, the routing table, dependency order, deadlines, offences, output budgets, owned
namespaces and grants, hung calls, requirements, how a worker ended, confinement plans, and
the states a plugin can be in.

Each is tested by tables.
"""
