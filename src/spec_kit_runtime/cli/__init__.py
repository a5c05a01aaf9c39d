"""The ``spec-kit-runtime`` command: its parser (``main``), ``run`` (the supervisor in the
foreground), the commands that talk to a running supervisor, and ``top``."""
