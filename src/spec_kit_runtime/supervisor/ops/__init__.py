"""What operators read of a running supervisor: HTTP probes and metrics, systemd
readiness and watchdog pings, and the log's formats."""
