"""``pgsafe daemon --metrics-port P``: Prometheus text on ``http://127.0.0.1:P/metrics``.

The body is :func:`pgsafe.status.metrics.render` (the repository's health, owned by
:mod:`pgsafe.status`, which the scheduler sits above) followed by
:func:`pgsafe.schedule.stats.daemon_metrics`.  Only the loopback address is served:
metrics reveal backup names and sizes, nothing for the network.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pgsafe.errors import BadInput
from pgsafe.repo.repository import Repository
from pgsafe.schedule.stats import daemon_metrics
from pgsafe.status import health, metrics

log = logging.getLogger("pgsafe.schedule")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def render_all(repo: Repository, raw: Mapping[str, object] | None = None) -> str:
    """The repository's metrics and the daemon's.

    ``raw`` is the whole config: its health thresholds apply, as for ``pgsafe metrics``.
    """
    base = metrics.render(repo, health.thresholds_from(raw or {}))
    if base and not base.endswith("\n"):
        base += "\n"
    return base + daemon_metrics()


class MetricsServer:
    """A small HTTP server in a background thread."""

    def __init__(self, port: int, render: Callable[[], str]) -> None:
        self._render = render

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] != "/metrics":
                    self.send_error(404, "only /metrics is served here")
                    return
                try:
                    body = render().encode()
                except Exception as exc:  # a scrape failure must not stop the daemon
                    log.error("metrics: %s", exc)
                    self.send_error(500, "rendering the metrics failed; see the daemon's log")
                    return
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                log.debug("metrics: " + format, *args)

        try:
            self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        except OSError as exc:
            raise BadInput(
                f"cannot serve metrics on 127.0.0.1:{port}: {exc.strerror}",
                hint="choose another --metrics-port",
            ) from None
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
