"""A fake provider's HTTP server on loopback, served from a daemon thread."""

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class LoopbackServer:
    """Start / stop / context manager around a ThreadingHTTPServer; ``_released`` lets handlers
    that hang on purpose (timeouts on demand) return when the server stops."""

    def __init__(
        self, handler: Callable[..., BaseHTTPRequestHandler], host: str, port: int, name: str
    ) -> None:
        self._released = threading.Event()
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
