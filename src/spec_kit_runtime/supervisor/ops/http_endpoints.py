"""Health, readiness, metrics and status over HTTP: off by default, loopback only.

``/healthz`` (liveness: the supervisor's loop answers), ``/readyz`` (readiness), with the
Kubernetes probe conventions (200, or 503 with the reasons); ``/metrics`` in the Prometheus
text format; ``/status`` as JSON. Served by one thread of the supervisor process that is a
client of the supervisor's own control socket: it reads nothing the loop owns, so a slow
scraper cannot stall the loop, and a stalled loop shows as a failing ``/healthz``. Each
connection gets a thread of its own and ``REQUEST_TIMEOUT`` to send its request, so an idle
or slow client holds up neither other probes nor the supervisor's exit; the questions to
the loop are asked one at a time over one control connection.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from spec_kit_runtime.client.client import SupervisorClient
from spec_kit_runtime.errors import RuntimeFailure
from spec_kit_runtime.policy.health import Health
from spec_kit_runtime.wire.protocol import ControlOp
from spec_kit_runtime.wire.status import Status, from_data

from .metrics import exposition

log = logging.getLogger(__name__)
PROBE_TIMEOUT = 2.0  # seconds the loop has to answer a probe
REQUEST_TIMEOUT = 5.0  # seconds a client has to send its request


class HttpEndpoints:
    """The HTTP server (bound at construction, so a busy port fails the start)."""

    def __init__(self, host: str, port: int) -> None:
        self._server = _Server((host, port), _Handler)
        self._server.endpoints = self
        self._host = host
        self._client: SupervisorClient | None = None
        self._connect: tuple[str, bytes] | None = None
        self._thread: threading.Thread | None = None
        self._asking = threading.Lock()  # one control connection, one question at a time

    @property
    def address(self) -> str:
        return f"{self._host}:{self._server.server_address[1]}"

    def start(self, control_endpoint: str, token: bytes) -> None:
        self._connect = (control_endpoint, token)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="spec-kit-http")
        self._thread.start()
        log.info("HTTP endpoints on http://%s (/healthz /readyz /metrics /status)",
                 self.address)

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()
        if self._client is not None:
            self._client.close()

    def ask(self, op: ControlOp) -> Any:
        """A control operation of the supervisor (from any request thread)."""
        with self._asking:
            if self._client is None:
                assert self._connect is not None
                self._client = SupervisorClient(*self._connect, connect_timeout=PROBE_TIMEOUT)
            return self._client.control(op, timeout=PROBE_TIMEOUT)


class _Server(ThreadingHTTPServer):
    endpoints: HttpEndpoints
    daemon_threads = True  # a request still being read never holds up the exit
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("http: a client from %s went away mid-request", client_address,
                  exc_info=True)  # into the log (and its format), not onto stderr


class _Handler(BaseHTTPRequestHandler):
    server_version = "spec-kit-runtime"
    timeout = REQUEST_TIMEOUT

    def do_GET(self) -> None:
        assert isinstance(self.server, _Server)
        endpoints = self.server.endpoints
        path = self.path.split("?", 1)[0]
        try:
            if path == "/healthz":
                health = from_data(Health, endpoints.ask(ControlOp.HEALTH))
                self._reply(200, "text/plain", b"ok\n" if health.live else b"not live\n")
            elif path == "/readyz":
                health = from_data(Health, endpoints.ask(ControlOp.HEALTH))
                text = "ready\n" if health.ready else "\n".join(
                    ["not ready", *health.reasons]) + "\n"
                self._reply(200 if health.ready else 503, "text/plain", text.encode())
            elif path == "/metrics":
                body = exposition(from_data(Status, endpoints.ask(ControlOp.STATUS)),
                                  from_data(Health, endpoints.ask(ControlOp.HEALTH)))
                self._reply(200, "text/plain; version=0.0.4; charset=utf-8", body)
            elif path == "/status":
                body = json.dumps(endpoints.ask(ControlOp.STATUS), default=str).encode()
                self._reply(200, "application/json", body)
            else:
                self._reply(404, "text/plain", b"not found: /healthz /readyz /metrics /status\n")
        except RuntimeFailure as exc:  # the loop did not answer in time: not live
            self._reply(503, "text/plain", f"the supervisor did not answer: {exc}\n".encode())

    def _reply(self, code: int, kind: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http: " + format, *args)
