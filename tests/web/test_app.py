"""The explorer's JSON API: every endpoint, bad input answered with a 4xx, concurrent load."""

import base64
import io
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from vaekit.web import running


@pytest.fixture(scope="module")
def client(app):
    return TestClient(app)


def decode(data_url: str) -> np.ndarray:
    """A data URL from the API as pixels (fails if it is not a decodable PNG)."""
    header, payload = data_url.split(",", 1)
    assert header == "data:image/png;base64"
    with Image.open(io.BytesIO(base64.b64decode(payload))) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"))


def png_file(size=(40, 30), color=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A well-formed PNG header claiming ``width`` x ``height``, with a few bytes of pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(64))) + chunk(b"IEND", b"")


def samples(client, **body):
    response = client.post("/api/samples", json={"count": 4, "seed": 1, **body})
    assert response.status_code == 200, response.text
    return response.json()


def test_the_page_and_its_script_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "vaekit explorer" in page.text
    assert client.get("/static/app.js").status_code == 200


def test_info_describes_the_model_and_its_attributes(client):
    info = client.get("/api/info").json()
    assert info["image_size"] == 16 and info["channels"] == 3
    assert info["latent_size"] == 4 and info["attributes"] == ["Bigger", "Redder"]


def test_samples_are_decodable_images_repeatable_by_seed_and_shaped_by_temperature(client):
    first = samples(client)
    assert len(first["images"]) == 4 and len(first["latents"][0]) == 4
    assert decode(first["images"][0]).shape == (16, 16, 3)
    assert samples(client)["images"] == first["images"]
    cold = samples(client, temperature=0.0)
    assert cold["latents"][0] == [0.0] * 4
    assert cold["images"] != first["images"]


def test_an_uploaded_image_is_encoded_reconstructed_and_given_a_latent(client):
    response = client.post("/api/encode", files={"file": ("red.png", png_file(), "image/png")})
    assert response.status_code == 200, response.text
    result = response.json()
    assert decode(result["original"]).shape == (16, 16, 3)
    assert decode(result["original"])[8, 8].tolist() == [200, 30, 30]
    assert decode(result["reconstruction"]).shape == (16, 16, 3)
    assert len(result["latent"]) == 4


@pytest.mark.parametrize(
    ("content", "status", "words"),
    [
        (png_file()[:60], 400, "broken or truncated"),
        (b"just some text, not pixels\n" * 4, 415, "not an image"),
        (png_header_only(20000, 20000), 413, "too many pixels"),
        (b"", 400, "empty"),
    ],
    ids=["truncated-png", "text-named-png", "20000x20000-header", "empty-file"],
)
def test_malformed_uploads_get_a_clear_4xx(client, content, status, words):
    response = client.post("/api/encode", files={"file": ("upload.png", content, "image/png")})
    assert response.status_code == status
    assert words in response.json()["detail"]


def test_a_request_without_a_file_is_refused(client):
    assert client.post("/api/encode").status_code == 422
    assert client.post("/api/encode", content=b"", headers={"Content-Type": "multipart/form-data"}).status_code in (
        400,
        422,
    )


def test_decode_checks_the_latent_length(client):
    latent = samples(client)["latents"][0]
    assert decode(client.post("/api/decode", json={"latent": latent}).json()["image"]).shape == (16, 16, 3)
    response = client.post("/api/decode", json={"latent": latent[:3]})
    assert response.status_code == 422 and "has 4 numbers" in response.json()["detail"]


def test_interpolation_runs_from_a_to_b(client):
    a, b = samples(client)["latents"][:2]
    image = {t: client.post("/api/interpolate", json={"a": a, "b": b, "t": t}).json()["image"] for t in (0, 0.5, 1)}
    assert image[0] == client.post("/api/decode", json={"latent": a}).json()["image"]
    assert image[1] == client.post("/api/decode", json={"latent": b}).json()["image"]
    assert image[0.5] not in (image[0], image[1])
    assert client.post("/api/interpolate", json={"a": a, "b": b, "mode": "warp"}).status_code == 422
    assert client.post("/api/interpolate", json={"a": a, "b": b, "t": 2}).status_code == 422


def test_the_interpolation_gif_downloads_as_an_animation(client):
    a, b = samples(client)["latents"][:2]
    response = client.post("/api/interpolation.gif", json={"a": a, "b": b, "frames": 6, "mode": "lerp"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/gif"
    assert "attachment" in response.headers["content-disposition"]
    with Image.open(io.BytesIO(response.content)) as gif:
        assert gif.n_frames == 10  # forward and back
        assert gif.size == (128, 128)


def test_attribute_editing_moves_along_the_saved_vector(client):
    latent = samples(client)["latents"][0]
    plain = client.post("/api/decode", json={"latent": latent}).json()["image"]
    unchanged = client.post("/api/edit", json={"latent": latent, "strengths": {"Bigger": 0}}).json()["image"]
    assert unchanged == plain
    edited = client.post("/api/edit", json={"latent": latent, "strengths": {"Bigger": 2, "Redder": -1}}).json()
    moved = [latent[0] + 4, latent[1], latent[2] + 2, latent[3] - 1]
    assert edited["image"] == client.post("/api/decode", json={"latent": moved}).json()["image"]
    response = client.post("/api/edit", json={"latent": latent, "strengths": {"Smiling": 1}})
    assert response.status_code == 422 and "Bigger, Redder" in response.json()["detail"]


def test_traversal_sets_one_dimension_or_walks_one_attribute(client):
    latent = samples(client)["latents"][0]
    values = [-2.0, 0.0, 2.0]
    by_dimension = client.post("/api/traverse", json={"latent": latent, "values": values, "dimension": 1}).json()
    expected = client.post("/api/decode", json={"latent": [latent[0], 2.0, *latent[2:]]}).json()["image"]
    assert len(by_dimension["images"]) == 3 and by_dimension["images"][2] == expected
    by_attribute = client.post("/api/traverse", json={"latent": latent, "values": values, "attribute": "Bigger"})
    plain = client.post("/api/decode", json={"latent": latent}).json()["image"]
    assert by_attribute.json()["images"][1] == plain
    for bad in ({"dimension": 4}, {"attribute": "Nope"}, {}, {"dimension": 0, "attribute": "Bigger"}):
        assert client.post("/api/traverse", json={"latent": latent, "values": values, **bad}).status_code == 422


def test_examples_from_the_training_data_can_be_encoded(client):
    examples = client.get("/api/examples").json()["images"]
    assert len(examples) == 8 and decode(examples[0]).shape == (16, 16, 3)
    encoded = client.post("/api/examples/0/encode").json()
    assert encoded["original"] == examples[0] and len(encoded["latent"]) == 4
    assert client.post("/api/examples/99/encode").status_code == 422


def test_fifty_concurrent_requests_all_succeed(app):
    latent = [0.1, -0.2, 0.3, 0.0]
    requests = [
        ("post", "/api/samples", {"json": {"count": 8, "seed": 3}}),
        ("post", "/api/interpolate", {"json": {"a": latent, "b": [0.0] * 4, "t": 0.3}}),
        ("post", "/api/encode", {"files": {"file": ("x.png", png_file(), "image/png")}}),
        ("post", "/api/encode", {"files": {"file": ("x.png", b"not an image", "image/png")}}),
        ("get", "/api/info", {}),
    ]
    with running(app) as url, httpx.Client(base_url=url, timeout=60) as http:

        def send(i):
            method, path, options = requests[i % len(requests)]
            return path, getattr(http, method)(path, **options).status_code

        with ThreadPoolExecutor(50) as pool:
            answers = list(pool.map(send, range(50)))
    for path, status in answers:
        assert status == (415 if path == "/api/encode" and status != 200 else 200), (path, status)
    assert sum(status == 415 for _, status in answers) == 10


def test_every_answer_forbids_inline_and_foreign_scripts(client):
    for response in (client.get("/"), client.get("/static/app.js"), client.get("/api/info"), client.get("/nowhere")):
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "http" not in policy
        assert response.headers["x-content-type-options"] == "nosniff"
    refused = client.get("/", headers={"host": "evil.example"})  # the guard's own answers carry it too
    assert refused.status_code == 421 and "content-security-policy" in refused.headers


def test_no_page_loads_code_from_elsewhere_and_the_api_docs_are_served_from_the_package(client):
    docs = client.get("/api/docs")
    assert docs.status_code == 200 and '<script src="/static/docs.js">' in docs.text
    assert client.get("/docs").status_code == 404  # FastAPI's CDN page is not served
    assert "/api/samples" in client.get("/api/openapi.json").json()["paths"]
    for asset in ("/", "/static/app.js", "/api/docs", "/static/docs.js"):
        text = client.get(asset).text.lower()
        assert "cdn" not in text and "http://" not in text and "https://" not in text
    assert "innerhtml" not in client.get("/static/docs.js").text.lower()  # text only: the schema is never HTML


def test_a_negative_dimension_is_refused_not_counted_from_the_end(client):
    latent = samples(client)["latents"][0]
    answer = client.post("/api/traverse", json={"latent": latent, "values": [1.0], "dimension": -1})
    assert answer.status_code == 422 and "outside 0..3" in answer.text


def test_the_example_images_are_held_out_ones(client, served_run):
    from vaekit.config import Config
    from vaekit.data import load_dataset

    data = Config.from_yaml(served_run / "config.yaml").data
    held_out = load_dataset(data).split("val", data.val_fraction, data.seed).images[:8]
    shown = np.stack([decode(image) for image in client.get("/api/examples").json()["images"]])
    assert np.array_equal(shown, held_out.transpose(0, 2, 3, 1))


def test_an_example_index_outside_the_examples_is_refused_at_both_ends(client):
    count = len(client.get("/api/examples").json()["images"])
    assert client.post(f"/api/examples/{count - 1}/encode").status_code == 200
    for index in (count, -1):
        assert client.post(f"/api/examples/{index}/encode").status_code == 422, index


def test_a_sample_request_is_bounded_at_both_ends(client):
    assert client.post("/api/samples", json={"count": 64}).status_code == 200
    for count in (65, 0, 1_000_000):
        assert client.post("/api/samples", json={"count": count}).status_code == 422, count


def test_an_upload_is_prepared_with_the_models_channels():
    from vaekit.config import DataConfig
    from vaekit.web.uploads import read_upload

    gray = read_upload(png_file(), DataConfig(image_size=16, channels=1))
    colour = read_upload(png_file(), DataConfig(image_size=16, channels=3))
    assert gray.shape == (1, 16, 16) and colour.shape == (3, 16, 16)


def test_the_api_page_states_vaekits_version(client):
    from vaekit.version import __version__

    assert client.get("/api/openapi.json").json()["info"]["version"] == __version__
