"""The wire, shared by every process role: the records (``protocol``), their msgpack codec
(``codec``), the status, health and plugins answers as records (``status``), frames on and
off ZeroMQ sockets (``socket_io``), addresses, the bootstrap a worker reads at birth, the
runtime directory where clients find the supervisor, and CURVE.

A worker loads it, so it stays small and free of the supervisor's and the client's code.
"""
