"""A local HTTP server of a folder that answers byte ranges and sends an ETag, as object stores do,
and counts the bytes it sends: shards read from a URL in tests and in benchmarks/shard_index.py."""

from __future__ import annotations

import functools
import http.server
import io
import re
import threading
from pathlib import Path


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    sent = 0  # bytes of GET answers, over every handler of this class

    def send_head(self):
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return None
        size = path.stat().st_size
        start, end = 0, size - 1
        wanted = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if wanted:
            start, end = int(wanted[1]), min(int(wanted[2] or end), end)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("ETag", f'"{path.stat().st_mtime_ns}"')
        self.end_headers()
        with open(path, "rb") as handle:
            handle.seek(start)
            data = handle.read(end - start + 1)
        type(self).sent += len(data) if self.command == "GET" else 0
        return io.BytesIO(data)

    def log_message(self, *_):
        pass


def serve_with_ranges(folder: Path) -> tuple[http.server.ThreadingHTTPServer, type[RangeHandler]]:
    """Serve ``folder`` on a free local port (``shutdown()`` when done); the handler class holds the
    count of bytes sent (its own subclass, so servers do not share it)."""
    handler = type("Counting", (RangeHandler,), {"sent": 0})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, handler
