"""A worker's confinement, applied to itself: Landlock, namespaces, another uid, prctl and
rlimits."""
