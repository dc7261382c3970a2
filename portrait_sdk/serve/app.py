"""The HTTP service: masks, mattes, effects and stats for uploaded images, the model files and their cards, and the
browser demo (``/``), which runs the same ``.tflite`` files in the page with MediaPipe Tasks Vision.

Requests are read and parsed on the event loop; decoding, inference and encoding run in the thread pool, each
request on an interpreter of its own borrowed from the model's pool. No TensorFlow.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Literal

import cv2
import numpy as np
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

import portrait_sdk
from portrait_sdk.assets import MODELS_DIR
from portrait_sdk.effects import EFFECTS, FOREGROUND_THRESHOLD, binary_mask, parse_color
from portrait_sdk.serve.store import ModelStore
from portrait_sdk.serve.uploads import FormPart, UploadLimits, form_image, parse_form, read_body

PACKAGE = Path(portrait_sdk.__file__).parent
WEB = PACKAGE / "web"  # the demo page and its script
# MediaPipe Tasks Vision's bundle and wasm files, installed by `npm ci --prefix web` in a source checkout.
DEFAULT_TASKS_VISION = PACKAGE.parent / "web" / "node_modules" / "@mediapipe" / "tasks-vision"

ImageFormat = Literal["jpeg", "png"]
EffectName = Literal[tuple(EFFECTS)]  # type: ignore[valid-type]
ModelQuery = Query(None, description="model name from /v1/models; default: the first portrait model")
RefineQuery = Query(False, description="snap the mask to the image's edges with the guided filter")


@dataclass(frozen=True)
class ServeConfig:
    models: Path = MODELS_DIR  # the released models shipped in the package
    limits: UploadLimits = field(default_factory=UploadLimits)
    pool_size: int = 2  # interpreters per model (and refine setting), i.e. requests of one model in parallel
    num_threads: int = 2  # LiteRT threads per interpreter
    tasks_vision: Path = DEFAULT_TASKS_VISION


@dataclass(frozen=True)
class Segmentation:
    image: np.ndarray  # RGB uint8
    alpha: np.ndarray  # foreground probability, float32 (H, W)
    model: str
    timings_ms: dict[str, float]


def _upload_body(*fields: str) -> dict:
    """OpenAPI text for a multipart body with these image fields (the first required), so /docs offers file inputs."""
    properties = {name: {"type": "string", "format": "binary"} for name in fields}
    schema = {"type": "object", "required": [fields[0]], "properties": properties}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}


def _image_route(media_types: tuple[str, ...], *fields: str) -> dict:
    return {"openapi_extra": _upload_body(*fields), "response_class": Response,
            "responses": {200: {"content": {media: {} for media in media_types}}}}


def encode(image: np.ndarray, image_format: ImageFormat = "png", quality: int = 90) -> Response:
    """An RGB or grey uint8 image as a PNG or JPEG response."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if image_format == "jpeg" else []
    ok, data = cv2.imencode(f".{image_format}", image, params)
    if not ok:
        raise HTTPException(500, f"could not encode the result as {image_format}")
    return Response(data.tobytes(), media_type=f"image/{image_format}")


def create_app(config: ServeConfig = ServeConfig()) -> FastAPI:
    """The FastAPI application serving the models of ``config.models``."""
    store = ModelStore(config.models, config.pool_size, config.num_threads)
    app = FastAPI(title="portrait-sdk", version=portrait_sdk.__version__,
                  description="Portrait, matting, hair and nail segmentation of uploaded images, and a browser demo "
                              "running the same models on the camera (GET /).")

    async def handle(request: Request, work: Callable[[dict[str, FormPart]], Response | dict]):
        """Read and parse the upload here, then run ``work`` on the form in the thread pool."""
        body = await read_body(request, config.limits)
        form = parse_form(body, request.headers.get("content-type", ""))
        return await run_in_threadpool(work, form)

    def segment(form: dict[str, FormPart], name: str, refine: bool) -> Segmentation:
        start = time.perf_counter()
        image = form_image(form, "image", config.limits)
        decoded = time.perf_counter()
        with store.borrow(name, refine) as segmenter:
            alpha = segmenter.segment(image)
            timings = {"decode": (decoded - start) * 1e3, **segmenter.timings_ms}
        return Segmentation(image, alpha, name, timings)

    @app.get("/v1/models", summary="The models offered, with their model cards")
    def list_models() -> dict:
        return {"default": store.resolve(None) if store.cards else None,
                "models": [{"name": name, "url": f"/models/{name}.tflite", "card": asdict(card)}
                           for name, card in store.cards.items()]}

    @app.get("/models/{name}.tflite", summary="A model file (the browser demo loads it)", response_class=FileResponse)
    def model_file(name: str):
        return FileResponse(store.path(store.resolve(name)), media_type="application/octet-stream")

    @app.post("/v1/mask", summary="Binary foreground mask (PNG, 0 or 255)", **_image_route(("image/png",), "image"))
    async def mask(request: Request, model: str | None = ModelQuery, refine: bool = RefineQuery,
                   threshold: float = Query(FOREGROUND_THRESHOLD, gt=0, lt=1)) -> Response:
        name = store.resolve(model)

        def work(form):
            alpha = segment(form, name, refine).alpha
            return encode(binary_mask(alpha, threshold))
        return await handle(request, work)

    @app.post("/v1/matte", summary="Soft alpha matte (PNG, 0..255)", **_image_route(("image/png",), "image"))
    async def matte(request: Request, model: str | None = ModelQuery, refine: bool = RefineQuery) -> Response:
        name = store.resolve(model)

        def work(form):
            return encode(np.rint(segment(form, name, refine).alpha * 255).astype(np.uint8))
        return await handle(request, work)

    @app.post("/v1/effect", summary="An effect applied with the model's mask (JPEG or PNG)",
              **_image_route(("image/jpeg", "image/png"), "image", "background"))
    async def apply_effect(request: Request, effect: EffectName = Query("blur"), model: str | None = ModelQuery,
                     refine: bool = RefineQuery, format: ImageFormat = Query("jpeg"),
                     quality: int = Query(90, ge=1, le=100),
                     strength: float | None = Query(None, ge=0, le=1, description="blur, hair-color"),
                     color: str | None = Query(None, description="#RRGGBB or R,G,B: hair-color, nails, and the "
                                                                 "replace background when no image is sent"),
                     gloss: float | None = Query(None, ge=0, le=1, description="nails")) -> Response:
        chosen, name = EFFECTS[effect], store.resolve(model)
        task = store.cards[name].task
        if task not in chosen.tasks:
            raise HTTPException(400, f"effect {effect!r} needs a model of task {'/'.join(chosen.tasks)}; "
                                     f"model {name!r} is a {task} model")
        try:
            rgb = parse_color(color) if color is not None else None
        except ValueError as error:
            raise HTTPException(422, str(error)) from None

        def work(form):
            result = segment(form, name, refine)
            background = form_image(form, "background", config.limits, required=False)
            if effect == "replace" and background is None:
                if rgb is None:
                    raise HTTPException(400, "effect 'replace' needs a 'background' image field or a color")
                background = np.array([[rgb]], np.uint8)
            options = {"strength": strength, "color": rgb, "gloss": gloss, "background": background}
            return encode(chosen(result.image, result.alpha, **options), format, quality)
        return await handle(request, work)

    @app.post("/v1/stats", summary="Foreground fraction, timings and model of one image (JSON)",
              openapi_extra=_upload_body("image"))
    async def stats(request: Request, model: str | None = ModelQuery, refine: bool = RefineQuery) -> dict:
        name = store.resolve(model)

        def work(form):
            start = time.perf_counter()
            result = segment(form, name, refine)
            timings = {**result.timings_ms, "total": (time.perf_counter() - start) * 1e3}
            height, width = result.alpha.shape
            return {"model": result.model, "task": store.cards[result.model].task, "width": width, "height": height,
                    "foreground_fraction": float(np.mean(result.alpha >= FOREGROUND_THRESHOLD)),
                    "mean_alpha": float(result.alpha.mean()),
                    "timings_ms": {k: round(v, 3) for k, v in timings.items()}}
        return await handle(request, work)

    @app.get("/", include_in_schema=False)
    def demo_page():
        return FileResponse(WEB / "index.html", media_type="text/html")

    app.mount("/web", StaticFiles(directory=WEB), name="web")
    if config.tasks_vision.is_dir():
        app.mount("/vendor/tasks-vision", StaticFiles(directory=config.tasks_vision), name="tasks-vision")
    else:
        @app.get("/vendor/tasks-vision/{path:path}", include_in_schema=False)
        def tasks_vision_missing(path: str):
            return JSONResponse({"detail": f"MediaPipe Tasks Vision is not installed at {config.tasks_vision}; "
                                           "run `npm ci --prefix web` in the repository"}, status_code=503)
    return app
