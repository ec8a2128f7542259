"""The web app behind ``vaekit serve RUN``: a JSON API over ``Explorer`` and one static page."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, File, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from vaekit.version import __version__
from vaekit.web.explorer import Explorer, LatentError
from vaekit.web.guard import Guard
from vaekit.web.uploads import MAX_UPLOAD_BYTES, UploadError, read_upload

STATIC = Path(str(resources.files("vaekit.web") / "static"))
LATENT_BOUND = 1e4  # far outside any prior sample; keeps float32 decodes finite
Number = Annotated[float, Field(allow_inf_nan=False, ge=-LATENT_BOUND, le=LATENT_BOUND)]
Strength = Annotated[float, Field(allow_inf_nan=False, ge=-100.0, le=100.0)]
Latent = list[Number]


class _Body(BaseModel):
    """Request bodies: finite numbers only (NaN / Infinity are 422, never a 500 later)."""

    model_config = ConfigDict(allow_inf_nan=False, extra="forbid")


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


class SampleRequest(_Body):
    count: int = Field(16, ge=1, le=64)
    temperature: float = Field(1.0, ge=0.0, le=3.0)
    seed: int = Field(0, ge=0, lt=2**63)


class DecodeRequest(_Body):
    latent: Latent


class InterpolateRequest(_Body):
    a: Latent
    b: Latent
    t: float = Field(0.5, ge=0.0, le=1.0)
    mode: str = "slerp"


class GifRequest(_Body):
    a: Latent
    b: Latent
    mode: str = "slerp"
    frames: int = Field(16, ge=2, le=64)


class EditRequest(_Body):
    latent: Latent
    strengths: dict[str, Strength] = Field(max_length=64)


class TraverseRequest(_Body):
    latent: Latent
    values: list[Strength] = Field(min_length=1, max_length=32)
    dimension: int | None = None
    attribute: str | None = None


def create_app(
    run: Path | str,
    device: str = "cpu",
    allowed_hosts: Iterable[str] = (),
    sampler: str | None = None,
    decoder: Path | str | None = None,
) -> FastAPI:
    """The app for the trained model in ``run`` (a run folder, its model/ or a checkpoint); it
    answers only for localhost and ``allowed_hosts`` (see ``vaekit.web.guard``); random latents
    come from ``sampler`` (``prior`` or a fitted ``gmm``; None: the one the model card names)."""
    explorer = Explorer(run, device, sampler=sampler, decoder=decoder)
    # FastAPI's interactive docs load their script from a CDN: not served (blank offline, and code
    # from elsewhere); /api/docs is the package's own page over /api/openapi.json
    app = FastAPI(
        title=f"vaekit explorer: {Path(run).name}",
        version=__version__,  # (FastAPI's own default is 0.1.0)
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.explorer = explorer
    app.add_middleware(Guard, allowed_hosts=list(allowed_hosts))

    @app.exception_handler(LatentError)
    async def latent_error(_request: Request, err: LatentError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, err: RequestValidationError) -> JSONResponse:
        # the offending input is left out: it may be NaN, which JSON cannot carry
        problems = [f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" for e in err.errors()]
        return JSONResponse({"detail": "; ".join(problems)}, status_code=422)

    @app.exception_handler(UploadError)
    async def upload_error(_request: Request, err: UploadError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=err.status)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/api/docs", include_in_schema=False)
    def docs() -> FileResponse:
        return FileResponse(STATIC / "docs.html")

    @app.get("/api/info")
    def info() -> dict:
        return explorer.info()

    @app.post("/api/samples")
    def samples(request: SampleRequest) -> dict:
        images, latents = explorer.samples(request.count, request.temperature, request.seed)
        return {"images": [data_url(png) for png in images], "latents": latents}

    @app.post("/api/encode")
    async def encode(file: UploadFile = File(...)) -> dict:  # noqa: B008 (FastAPI's way to declare an upload)
        data = await file.read(MAX_UPLOAD_BYTES + 1)
        # decoding and the model run in the thread pool: a slow upload never blocks other clients
        image = await run_in_threadpool(read_upload, data, explorer.config.data)
        return await run_in_threadpool(_encoded, explorer, image)

    @app.get("/api/examples")
    def examples() -> dict:
        return {"images": [data_url(png) for png in explorer.examples()]}

    @app.post("/api/examples/{index}/encode")
    def encode_example(index: int) -> dict:
        return _encoded(explorer, explorer.example(index))

    @app.post("/api/decode")
    def decode(request: DecodeRequest) -> dict:
        return {"image": data_url(explorer.decode(request.latent))}

    @app.post("/api/interpolate")
    def interpolate(request: InterpolateRequest) -> dict:
        return {"image": data_url(explorer.interpolate(request.a, request.b, request.t, request.mode))}

    @app.post("/api/interpolation.gif")
    def gif(request: GifRequest) -> Response:
        content = explorer.gif(request.a, request.b, request.mode, request.frames)
        headers = {"Content-Disposition": 'attachment; filename="interpolation.gif"'}
        return Response(content, media_type="image/gif", headers=headers)

    @app.post("/api/edit")
    def edit(request: EditRequest) -> dict:
        return {"image": data_url(explorer.edit(request.latent, request.strengths))}

    @app.post("/api/traverse")
    def traverse(request: TraverseRequest) -> dict:
        images = explorer.traverse(request.latent, request.values, request.dimension, request.attribute)
        return {"images": [data_url(png) for png in images]}

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _encoded(explorer: Explorer, image) -> dict:
    original, reconstruction, latent = explorer.encode(image)
    return {"original": data_url(original), "reconstruction": data_url(reconstruction), "latent": latent}


def serve(
    run: Path | str,
    host: str = "127.0.0.1",
    port: int = 8000,
    device: str = "cpu",
    allow_hosts: Iterable[str] = (),
    sampler: str | None = None,
    decoder: Path | str | None = None,
) -> None:
    """Serve the explorer until interrupted (connections bounded, idle ones dropped); ``decoder``: a
    distilled preview decoder that decodes the model's latents (``vaekit distill``)."""
    import uvicorn

    from vaekit.web.server import require_address, server_config

    require_address(host, port)  # a host this machine cannot bind: one line, before the model loads
    app = create_app(run, device, allowed_hosts=[host, *allow_hosts], sampler=sampler, decoder=decoder)
    print(f"vaekit explorer for {run}: http://{host}:{port}/  (Ctrl-C to stop)")
    uvicorn.Server(server_config(app, host, port)).run()
