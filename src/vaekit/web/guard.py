"""What reaches the explorer at all: the Host header, the origin of state-changing requests, and
body sizes, checked as the bytes stream in (pure ASGI, before any handler or multipart parser).

- Host: only the names the server was started for (localhost, 127.0.0.1, [::1], the bound host and
  any ``--allow-host``), so a DNS-rebinding page cannot read held-out images.
- Origin / Sec-Fetch-Site: a POST from another site (a page making the browser upload) is 403.
- Bodies: ``Content-Length`` over the limit is 413 before reading; a body that streams past it is
  cut off with 413 (uploads 16 MiB + multipart framing, JSON 1 MiB).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import urlsplit

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
UPLOAD_BODY_BYTES = 16 * 2**20 + 64 * 2**10
JSON_BODY_BYTES = 2**20


def host_name(value: str) -> str:
    """The host part of a Host header or netloc (``[::1]:8000`` -> ``::1``), lower case."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class Guard:
    """ASGI middleware: host allow-list, same-origin POSTs, streaming body limits."""

    def __init__(self, app, allowed_hosts: Iterable[str] = (), upload_paths: Iterable[str] = ("/api/encode",)):
        self.app = app
        self.allowed = {host_name(h) for h in (*LOCAL_HOSTS, *allowed_hosts) if h}
        self.upload_paths = set(upload_paths)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        if host_name(host) not in self.allowed and "*" not in self.allowed:
            return await _reply(send, 421, f"host {host!r} is not served here (start with --allow-host to add it)")
        if scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            origin = headers.get("origin")
            if headers.get("sec-fetch-site") == "cross-site" or (
                origin is not None and origin != "null" and urlsplit(origin).netloc.lower() != host.lower()
            ):
                return await _reply(send, 403, "cross-origin requests are refused")
            if origin == "null":
                return await _reply(send, 403, "cross-origin requests are refused")
        limit = UPLOAD_BODY_BYTES if scope["path"] in self.upload_paths else JSON_BODY_BYTES
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return await _reply(send, 413, f"the request body is over the limit of {limit // 2**20} MiB")
        received, started, exceeded = 0, False, False

        async def limited_receive():
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:  # stop reading: the app sees a disconnect, the client our 413
                    exceeded = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message):
            nonlocal started
            if exceeded:
                return  # the app's answer to the cut-off body is replaced by the 413 below
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await _reply(send, 413, f"the request body is over the limit of {limit // 2**20} MiB")


# The page runs only its own script and style (no inline code, no CDN), shows images it made (data: /
# blob: URLs) and is never framed; a text that came from a file can therefore never run as a script.
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        b"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


async def _reply(send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *SECURITY_HEADERS]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
