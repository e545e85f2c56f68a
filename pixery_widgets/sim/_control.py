"""The /_sim/ control API: change a running simulator from a notebook or a browser test.

These routes skip the one-at-a-time lock, the idle clock, the request log and
faults, so they answer even while a generation is running.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Request
from pydantic import BaseModel

from ._faults import Fault, fault_kind, normalize_route

router = APIRouter(prefix="/_sim")


class FaultRequest(BaseModel):
    route: str
    kind: str | None  # None disarms the route
    times: int | None = None
    delay: float = 0.02
    size: int = 200 * 1024 * 1024


def _snapshot(request: Request) -> dict[str, Any]:
    state = request.app.state.sim
    return {**state.config.to_json(), "current_model": state.current_model}


@router.get("/config")
async def get_config(request: Request) -> dict[str, Any]:
    return _snapshot(request)


@router.post("/config")
async def set_config(
    request: Request, changes: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    """Change any SimConfig knobs; ``current_model`` (a name or null) loads or unloads at once."""
    state = request.app.state.sim
    changes = dict(changes)
    load = "current_model" in changes
    model = changes.pop("current_model", None)
    try:
        state.config.update(changes)
    except (TypeError, ValueError) as exc:
        raise HTTPException(400, str(exc)) from exc
    if load:
        if model is not None and model not in state.config.available_models:
            raise HTTPException(400, f"Unknown model '{model}'")
        state.current_model = model
    return _snapshot(request)


@router.post("/fault")
async def set_fault(request: Request, fault: FaultRequest) -> dict[str, Any]:
    faults = request.app.state.sim.config.faults
    route = normalize_route(fault.route)
    if fault.kind is None:
        faults.pop(route, None)
    else:
        try:
            faults[route] = Fault(fault_kind(fault.kind), fault.times, fault.delay, fault.size)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from exc
    return _snapshot(request)


@router.delete("/fault")
async def clear_faults(request: Request) -> dict[str, Any]:
    request.app.state.sim.config.faults.clear()
    return _snapshot(request)


@router.get("/requests")
async def requests(request: Request) -> list[dict[str, Any]]:
    return [entry._asdict() for entry in request.app.state.sim.request_log]
