"""Linux helpers used by the supervisor and the workers: cgroups, a process's
descendants from ``/proc``, waiting on a child through its pidfd, and hardening checked
from ``/proc``."""
