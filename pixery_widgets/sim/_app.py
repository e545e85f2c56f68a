"""The simulated server's routes: the same paths, JSON, ranges and errors as the real one."""

from __future__ import annotations

import asyncio
import base64
import binascii
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from ._config import SimConfig, model_info
from ._control import router as control_router
from ._draw import DrawKey, reference_tint, render
from ._middleware import IDLE_KEY, SimMiddleware
from ._state import LoggedRequest, SimState

VRAM_LOADED_GB = 6.9


class GenerateRequest(BaseModel):
    """The body of POST /generate, with the real server's ranges (422 outside them)."""

    prompt: str
    negative_prompt: str | None = None
    model: str = "animagine"
    width: int = Field(1024, ge=512, le=1536)
    height: int = Field(1024, ge=512, le=1536)
    steps: int | None = Field(None, ge=1, le=50)
    cfg_scale: float | None = Field(None, ge=1.0, le=20.0)
    seed: int | None = None
    reference_image: str | None = None
    ip_adapter_scale: float = Field(0.7, ge=0.0, le=1.0)
    lora_name: str | None = None
    lora_scale: float = Field(0.8, ge=0.0, le=1.5)


class SwitchRequest(BaseModel):
    model: str


router = APIRouter()


def sim_state(request: Request) -> SimState:
    return request.app.state.sim  # type: ignore[no-any-return]


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    state = sim_state(request)
    config = state.config
    loaded = state.current_model
    cuda = config.gpu_name is not None
    vram = (VRAM_LOADED_GB if loaded else 0.0) if cuda else None
    return JSONResponse(
        {
            "status": "healthy" if loaded else "no_model_loaded",
            "current_model": loaded,
            "available_models": list(config.available_models),
            "ip_adapter_loaded": config.ip_adapter_loaded,
            "cuda_available": cuda,
            "gpu_name": config.gpu_name,
            "vram_allocated_gb": vram,
            "idle_seconds": round(request.scope.get(IDLE_KEY, 0.0), 1),
            "idle_timeout_minutes": config.idle_timeout_minutes,
        }
    )


@router.get("/models")
async def models(request: Request) -> JSONResponse:
    state = sim_state(request)
    config = state.config
    menu = {
        name: {
            "description": model_info(name).description,
            "downloaded": name not in config.missing,
            "loaded": name == state.current_model,
            "default_cfg": model_info(name).default_cfg,
            "default_steps": model_info(name).default_steps,
        }
        for name in config.available_models
    }
    return JSONResponse({"models": menu, "current": state.current_model})


@router.get("/loras")
async def loras(request: Request) -> JSONResponse:
    return JSONResponse({"loras": list(sim_state(request).config.loras)})


@router.post("/switch-model")
async def switch_model(body: SwitchRequest, request: Request) -> JSONResponse:
    await sim_state(request).load(body.model)
    return JSONResponse({"status": "ok", "model": body.model})


@router.post("/generate")
async def generate(body: GenerateRequest, request: Request) -> JSONResponse:
    state = sim_state(request)
    config = state.config
    state.check_model(body.model)
    if body.lora_name and body.lora_name not in config.loras:
        available = ", ".join(config.loras) or "none"
        raise HTTPException(400, f"Unknown LoRA '{body.lora_name}'. Available LoRAs: {available}")
    # Like the real server, a reference is only looked at when IP-Adapter is loaded.
    tint = (
        _reference_tint(body.reference_image)
        if body.reference_image and config.ip_adapter_loaded
        else None
    )
    await state.load(body.model)

    info = model_info(body.model)
    seed = body.seed if body.seed is not None else random.randint(0, 2**32 - 1)
    negative = body.negative_prompt if body.negative_prompt is not None else info.default_negative
    key = DrawKey(
        body.prompt,
        negative,
        seed,
        body.width,
        body.height,
        body.model,
        body.lora_name or None,
        body.lora_scale if body.lora_name else 0.0,
        tint,
        body.ip_adapter_scale if tint else 0.0,
    )
    await asyncio.sleep(config.gen_seconds)
    image = await asyncio.to_thread(render, key, config.texture)

    parameters: dict[str, object] = {
        "prompt": body.prompt,
        "negative_prompt": negative,
        "width": body.width,
        "height": body.height,
        "steps": body.steps if body.steps is not None else info.default_steps,
        "cfg_scale": body.cfg_scale if body.cfg_scale is not None else info.default_cfg,
        "model": body.model,
    }
    if body.lora_name:
        parameters |= {"lora_name": body.lora_name, "lora_scale": body.lora_scale}
    return JSONResponse({"image": image, "seed": seed, "parameters": parameters})


def _reference_tint(reference: str) -> tuple[int, int, int]:
    try:
        return reference_tint(base64.b64decode(reference, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise HTTPException(400, f"Invalid reference image: {exc}") from exc


def create_app(
    config: SimConfig | None = None,
    *,
    request_log: list[LoggedRequest] | None = None,
    on_idle_exit: Callable[[], None] | None = None,
) -> FastAPI:
    """A FastAPI app that behaves like the self-hosted SDXL server.

    ``config`` stays live: the app reads it on every request. ``on_idle_exit`` is
    called once when ``exit_when_idle`` is set and the idle timeout passes.
    """
    state = SimState(config or SimConfig(), request_log, on_idle_exit)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        watcher = asyncio.create_task(state.watch_idle())
        try:
            yield
        finally:
            watcher.cancel()

    app = FastAPI(title="pixery SDXL simulator", lifespan=lifespan)
    app.state.sim = state
    app.include_router(router)
    app.include_router(control_router)
    app.add_middleware(SimMiddleware, state=state)  # type: ignore[arg-type]
    return app
