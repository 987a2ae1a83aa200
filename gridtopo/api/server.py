"""How ``gridtopo serve`` runs the API: uvicorn with the app factory, its timeouts, and
``TCP_NODELAY`` on every connection (:class:`NoDelayProtocol`).

With ``--workers`` above 1 uvicorn binds the listening socket itself, as
``socket.socket(family)`` — protocol number 0 — and asyncio sets ``TCP_NODELAY`` only on
connections whose socket says ``IPPROTO_TCP``. So on a keep-alive connection Nagle's algorithm
held back each response's second segment (uvicorn writes the head and the body apart) until
the client's delayed ACK, about 40 ms later: every answer took 45 ms instead of 1 ms.
:class:`NoDelayProtocol` sets the option itself, whatever the worker count.
"""

from __future__ import annotations

import asyncio
import socket

from uvicorn.protocols.http.h11_impl import H11Protocol

from gridtopo.api.limits import KEEP_ALIVE_SECONDS

APP_FACTORY = "gridtopo.api.app:app_from_env"
PROTOCOL = f"{__name__}:NoDelayProtocol"
WORKER_HEALTHCHECK_SECONDS = 120
"""How long uvicorn waits for a worker to answer: one imports for seconds on a busy host."""


class NoDelayProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with Nagle's algorithm off (see the module docstring)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Set ``TCP_NODELAY`` on the connection, then let uvicorn take it."""
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)


def run(host: str, port: int, workers: int) -> None:
    """Serve the app of ``$GRIDTOPO_DB`` (:func:`~gridtopo.api.app.app_from_env`) until
    interrupted: idle connections closed after :data:`KEEP_ALIVE_SECONDS`, no access log."""
    import uvicorn

    uvicorn.run(APP_FACTORY, factory=True, host=host, port=port, workers=workers,
                http=PROTOCOL, log_level="warning", access_log=False,
                timeout_keep_alive=KEEP_ALIVE_SECONDS,
                timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS)
