"""The web app behind ``vaekit serve RUN``: a JSON API over ``Explorer`` and one static page."""

from __future__ import annotations

import base64
from importlib import resources
from pathlib import Path

from fastapi import FastAPI, File, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from vaekit.serve.explorer import Explorer, LatentError
from vaekit.serve.uploads import MAX_UPLOAD_BYTES, UploadError, read_upload

STATIC = Path(str(resources.files("vaekit.serve") / "static"))
Latent = list[float]


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


class SampleRequest(BaseModel):
    count: int = Field(16, ge=1, le=64)
    temperature: float = Field(1.0, ge=0.0, le=3.0)
    seed: int = Field(0, ge=0, lt=2**63)


class DecodeRequest(BaseModel):
    latent: Latent


class InterpolateRequest(BaseModel):
    a: Latent
    b: Latent
    t: float = Field(0.5, ge=0.0, le=1.0)
    mode: str = "slerp"


class GifRequest(BaseModel):
    a: Latent
    b: Latent
    mode: str = "slerp"
    frames: int = Field(16, ge=2, le=64)


class EditRequest(BaseModel):
    latent: Latent
    strengths: dict[str, float]


class TraverseRequest(BaseModel):
    latent: Latent
    values: list[float] = Field(min_length=1, max_length=32)
    dimension: int | None = None
    attribute: str | None = None


def create_app(run: Path | str, device: str = "cpu") -> FastAPI:
    """The app for the trained model in ``run`` (a run folder, its model/ or a checkpoint)."""
    explorer = Explorer(run, device)
    app = FastAPI(title=f"vaekit explorer: {Path(run).name}", docs_url="/api/docs", openapi_url="/api/openapi.json")
    app.state.explorer = explorer

    @app.exception_handler(LatentError)
    async def latent_error(_request: Request, err: LatentError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=422)

    @app.exception_handler(UploadError)
    async def upload_error(_request: Request, err: UploadError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=err.status)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

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
        image = read_upload(data, explorer.config.data)
        return _encoded(explorer, image)

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


def serve(run: Path | str, host: str = "127.0.0.1", port: int = 8000, device: str = "cpu") -> None:
    """Serve the explorer until interrupted."""
    import uvicorn

    app = create_app(run, device)
    print(f"vaekit explorer for {run}: http://{host}:{port}/  (Ctrl-C to stop)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
