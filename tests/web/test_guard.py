"""The explorer answers only its own host and origin, reads bounded bodies, takes only raster images."""

from __future__ import annotations

import io
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.web.test_app import png_file
from vaekit.web import running
from vaekit.web.guard import host_name


@pytest.fixture(scope="module")
def client(app):
    return TestClient(app)


@pytest.mark.parametrize(
    ("header", "name"), [("127.0.0.1:8765", "127.0.0.1"), ("[::1]:80", "::1"), ("LocalHost", "localhost")]
)
def test_host_names_are_read_from_the_header(header, name):
    assert host_name(header) == name


def test_a_foreign_host_header_cannot_read_the_data(client):
    """DNS rebinding: attacker.example resolves to 127.0.0.1, but the Host header gives it away."""
    response = client.get("/api/examples", headers={"Host": "attacker.example:8765"})
    assert response.status_code == 421 and "--allow-host" in response.json()["detail"]
    assert client.get("/api/info", headers={"Host": "localhost:8765"}).status_code == 200


def test_a_cross_origin_upload_is_refused_and_a_same_origin_one_accepted(client):
    files = {"file": ("x.png", png_file(), "image/png")}
    foreign = client.post("/api/encode", files=files, headers={"Origin": "http://attacker.example"})
    assert foreign.status_code == 403
    fetch_meta = client.post("/api/samples", json={"count": 1}, headers={"Sec-Fetch-Site": "cross-site"})
    assert fetch_meta.status_code == 403
    same = client.post("/api/encode", files=files, headers={"Origin": "http://testserver"})
    assert same.status_code == 200


def test_only_raster_formats_reach_the_decoder(client):
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    response = client.post("/api/encode", files={"file": ("x.eps", eps, "application/postscript")})
    assert response.status_code == 415
    tiff = io.BytesIO()
    Image.new("RGB", (20, 20), (10, 200, 10)).save(tiff, "TIFF")
    assert client.post("/api/encode", files={"file": ("x.tif", tiff.getvalue(), "image/tiff")}).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"a": [0, 0, 0, 1], "b": [0, 0, 1, 0], "t": float("nan")},
        {"a": [0, 0, 0, float("inf")], "b": [0, 0, 1, 0]},
        {"a": [0, 0, 0, 1e308], "b": [0, 0, 1, 0]},
    ],
)
def test_non_finite_or_huge_numbers_are_422(client, body):
    import json

    response = client.post("/api/interpolate", content=json.dumps(body), headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert client.get("/api/info").status_code == 200


def test_non_finite_strengths_and_sample_settings_are_422(client):
    import json

    latent = [0.0, 0.0, 0.0, 0.0]
    for path, body in (
        ("/api/samples", {"count": 2, "temperature": float("nan")}),
        ("/api/edit", {"latent": latent, "strengths": {"Bigger": float("inf")}}),
        ("/api/traverse", {"latent": latent, "values": [float("nan")], "dimension": 0}),
    ):
        response = client.post(path, content=json.dumps(body), headers={"Content-Type": "application/json"})
        assert response.status_code == 422, path


def test_a_declared_oversized_body_is_refused_before_it_is_read(client):
    response = client.post(
        "/api/samples", content=b"{}", headers={"Content-Type": "application/json", "Content-Length": str(2**30)}
    )
    assert response.status_code == 413


def test_a_body_that_streams_past_the_limit_is_cut_off(app):
    """No Content-Length (chunked): the guard counts the bytes as they arrive."""

    def chunks():
        yield b'{"count": 1, "pad": "'
        for _ in range(40):
            yield b"x" * 65536  # 2.5 MiB in all, over the 1 MiB JSON limit
        yield b'"}'

    with running(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        response = http.post("/api/samples", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413


def test_an_upload_over_16_mib_is_413(client):
    response = client.post("/api/encode", files={"file": ("big.png", b"\x89PNG" + bytes(17 * 2**20), "image/png")})
    assert response.status_code == 413


def test_attribute_vectors_that_do_not_fit_the_latent_are_ignored(served_run, tmp_path):
    import shutil

    from safetensors.torch import save_file

    from vaekit.web import create_app

    copy = tmp_path / "run"
    shutil.copytree(served_run, copy)
    save_file({"shape": __import__("torch").ones(5)}, str(copy / "model" / "attributes.safetensors"))
    with pytest.warns(UserWarning, match="do not fit"):
        client = TestClient(create_app(copy, allowed_hosts=["testserver"]))
    response = client.post("/api/edit", json={"latent": [0.0] * 4, "strengths": {"shape": 1.0}})
    assert response.status_code == 422


def test_a_slow_upload_does_not_stall_other_clients(app):
    """One client trickles a large upload; /api/info answers meanwhile."""
    with running(app) as url:
        port = int(url.rsplit(":", 1)[1])
        slow = socket.create_connection(("127.0.0.1", port))
        boundary = b"b0undary"
        slow.sendall(
            b"POST /api/encode HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary="
            + boundary
            + b"\r\nContent-Length: 5000000\r\n\r\n--"
            + boundary
            + b'\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\nContent-Type: image/png\r\n\r\n'
        )
        with ThreadPoolExecutor(1) as pool, httpx.Client(base_url=url, timeout=10) as http:
            future = pool.submit(lambda: [http.get("/api/info").status_code for _ in range(5)])
            for _ in range(10):
                slow.sendall(bytes(1000))
                time.sleep(0.02)
            assert future.result(timeout=10) == [200] * 5
        slow.close()


def test_read_upload_itself_enforces_the_byte_and_pixel_limits():
    """Behind the guard, the upload reader holds its own limits (a caller other than the app)."""
    from tests.web.test_app import png_header_only
    from vaekit.config import DataConfig
    from vaekit.data.reader import MAX_PIXELS
    from vaekit.web.uploads import MAX_UPLOAD_BYTES, UploadError, read_upload

    config = DataConfig(image_size=16, channels=3)
    with pytest.raises(UploadError, match="MiB") as raised:
        read_upload(png_file() + bytes(MAX_UPLOAD_BYTES), config)
    assert raised.value.status == 413
    side = int(MAX_PIXELS**0.5) + 100  # over our limit, under Pillow's own bomb threshold
    with pytest.raises(UploadError, match="pixels") as raised:
        read_upload(png_header_only(side, side), config)
    assert raised.value.status == 413


def test_idle_sockets_neither_block_other_clients_nor_stay_open(app, monkeypatch):
    """Hundreds of sockets that never send a request (D6): other clients are answered as usual, and
    each idle socket is closed once it has waited REQUEST_TIMEOUT_S."""
    from vaekit.web import server

    monkeypatch.setattr(server, "REQUEST_TIMEOUT_S", 1.0)
    with running(app) as url:
        host, port = url.removeprefix("http://").split(":")
        other = ("127.0.0.2", 0)  # the idle crowd comes from another address than the clients
        idle = [socket.create_connection((host, int(port)), source_address=other) for _ in range(200)]
        try:
            latencies = []
            for _ in range(10):
                started = time.perf_counter()
                assert httpx.get(f"{url}/api/info", timeout=10).status_code == 200
                latencies.append(time.perf_counter() - started)
            assert max(latencies) < 2.0
            idle[0].settimeout(5)
            assert idle[0].recv(1) == b""  # closed by the server
        finally:
            for connection in idle:
                connection.close()


def test_one_address_cannot_hold_more_than_its_share_of_connections(app, monkeypatch):
    """A client that keeps reopening sockets (a renewing slowloris, N9) is held to MAX_PER_CLIENT
    open connections; another address is answered as usual."""
    from vaekit.web import server

    monkeypatch.setattr(server, "MAX_PER_CLIENT", 10)
    with running(app) as url:
        host, port = url.removeprefix("http://").split(":")
        crowd = [socket.create_connection((host, int(port)), source_address=("127.0.0.2", 0)) for _ in range(11)]
        try:
            crowd[-1].settimeout(2)
            assert crowd[-1].recv(1) == b""  # the eleventh is closed at once
            crowd[0].settimeout(0.3)
            with pytest.raises(TimeoutError):
                crowd[0].recv(1)  # its first ten are open (until their request timeout)
            assert httpx.get(f"{url}/api/info", timeout=10).status_code == 200  # from 127.0.0.1
        finally:
            for connection in crowd:
                connection.close()


def _guarded(headers: dict[str, str], method: str = "POST"):
    """What the guard answers a request with ``headers`` (the app behind it answers 200)."""
    import asyncio

    from vaekit.web.guard import Guard

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": "/api/samples",
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
    }
    asyncio.run(Guard(app)(scope, receive, send))
    return sent[0]["status"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"host": "127.0.0.1:8000", "origin": "http://127.0.0.1:8000"}, 200),
        ({}, 421),  # no Host header at all: not a way around the allow-list
        ({"host": "127.0.0.1:8000", "origin": "http://127.0.0.1:9999"}, 403),  # another port is another origin
        ({"host": "127.0.0.1:8000", "origin": "null"}, 403),  # a sandboxed page or a file:// page
        ({"host": "127.0.0.1:8000", "sec-fetch-site": "cross-site"}, 403),
    ],
)
def test_the_guard_checks_host_and_origin_to_the_port(headers, status):
    assert _guarded(headers) == status
