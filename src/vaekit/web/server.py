"""How the explorer is served: one uvicorn configuration for ``vaekit serve`` and the background
server (tests, notebooks), with a client that does not send its request in a few seconds dropped,
so that idle sockets cannot crowd out the clients that ask for something."""

from __future__ import annotations

import socket
from collections import Counter

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from vaekit.schema import ConfigError

REQUEST_TIMEOUT_S = 5.0  # to send a request's headers, on a new connection or after a response
MAX_CONNECTIONS = 512  # open connections at once (idle ones are dropped after REQUEST_TIMEOUT_S)
MAX_PER_CLIENT = 64  # open connections of one address: a client reopening sockets cannot fill the server
_open_by_client: Counter[str] = Counter()  # (one event loop serves them all: no lock needed)


class PromptClientsProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, closing a connection whose next request has not started within
    ``REQUEST_TIMEOUT_S`` (uvicorn itself has no timeout for request headers)."""

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        self._client = str(peer[0]) if peer else ""
        _open_by_client[self._client] += 1
        if _open_by_client[self._client] > MAX_PER_CLIENT:
            transport.close()  # over its share: others keep being served
        self._wait_for_request()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._wait_for_request()

    def connection_lost(self, exc: Exception | None) -> None:
        self._request_timer.cancel()
        _open_by_client[self._client] -= 1
        if _open_by_client[self._client] <= 0:
            del _open_by_client[self._client]
        super().connection_lost(exc)

    def _wait_for_request(self) -> None:
        served = self.cycle  # a new request replaces it as soon as its headers are in

        def drop_if_still_waiting() -> None:
            if self.cycle is served and not self.transport.is_closing():
                self.transport.close()

        timer = getattr(self, "_request_timer", None)
        if timer is not None:
            timer.cancel()
        self._request_timer = self.loop.call_later(REQUEST_TIMEOUT_S, drop_if_still_waiting)


def require_address(host: str, port: int) -> None:
    """``--host`` names an address of this machine and ``--port`` is free there, or one ConfigError."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as err:
        raise ConfigError(f"serve --host: cannot resolve {host!r} ({err})") from None
    with socket.socket(family, kind, proto) as probe:
        try:
            probe.bind(address)
        except OSError as err:
            raise ConfigError(f"serve --host/--port: cannot listen on {host}:{port} ({err.strerror or err})") from None


def server_config(app, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=PromptClientsProtocol,
        log_level="warning",
        limit_concurrency=MAX_CONNECTIONS,
        timeout_keep_alive=int(REQUEST_TIMEOUT_S),
    )
