"""A stand-in for the self-hosted SDXL server: same routes, JSON, validation and
blocking, deterministic pictures, and faults on demand. No GPU needed.

    with run_simulator(SimConfig(gen_seconds=0)) as sim:
        httpx.get(f"{sim.url}/health")

or from a shell: ``python -m pixery_widgets.sim --port 8000``.

Pictures are flat shapes by default, a few tens of KB as PNG. A real SDXL server
sends photographs of 1-3 MB, so ``SimConfig(texture="photo")`` (``--texture
photo``) draws the same pictures with light, blur and grain, about 1.5 MB at
1024x1024, and ``"photo-heavy"`` about 3 MB; still the same bytes for the same
request.

A client may spread a batch over several GPU boxes (SELFHOSTED_API_URL holding
URLs joined with commas). ``SimPool(3, config)`` serves three independent
simulators, each its own app, state and copy of the config, on consecutive ports
(free ones with ``port=0``); ``pool.stop(1)`` / ``pool.start(1)`` take one down
and bring it back on its port. From a shell: ``python -m pixery_widgets.sim
--servers 3 --port 8000 --start-model animagine,pony`` prints each URL and the
SELFHOSTED_API_URL value, and stops them all on Ctrl-C or SIGTERM.
"""

#: The simulator's own dependencies, which come with the ``sim`` extra.
_EXTRA = ("fastapi", "uvicorn", "starlette", "pydantic")
#: Why the simulator cannot run here, in words, or None when it can.
MISSING_EXTRA: str | None = None

try:
    from ._app import GenerateRequest, create_app
    from ._config import MODELS, ModelInfo, SimConfig
    from ._faults import Fault, FaultKind, parse_fault_spec
    from ._pool import SimPool
    from ._server import SimServer, run_simulator
    from ._state import LoggedRequest
except ModuleNotFoundError as exc:
    if (exc.name or "").split(".")[0] not in _EXTRA:
        raise
    MISSING_EXTRA = (
        f"The simulator needs {exc.name}, which comes with its extra: "
        "pip install 'pixery-widgets[sim]'"
    )

    def __getattr__(name: str) -> object:
        raise ModuleNotFoundError(MISSING_EXTRA)


__all__ = [
    "MISSING_EXTRA",
    "MODELS",
    "Fault",
    "FaultKind",
    "GenerateRequest",
    "LoggedRequest",
    "ModelInfo",
    "SimConfig",
    "SimPool",
    "SimServer",
    "create_app",
    "parse_fault_spec",
    "run_simulator",
]
