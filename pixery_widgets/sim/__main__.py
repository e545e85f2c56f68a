"""``python -m pixery_widgets.sim --port 8000``: serve the simulator until interrupted.

``--servers 3`` serves three independent simulators on ports 8000-8002 from one
process, for a client that spreads work over several GPU boxes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import MISSING_EXTRA

if MISSING_EXTRA is not None:  # said in a sentence, not a traceback
    sys.exit(MISSING_EXTRA)

import uvicorn

from ._app import create_app
from ._config import DEFAULT_LORAS, MODELS, SimConfig
from ._draw import TEXTURES
from ._faults import FaultKind, parse_fault_spec
from ._pool import SimPool, interrupt_event
from ._server import bind_socket, quiet_uvicorn_logs


def _names(values: list[str]) -> list[str]:
    """Flags that take names accept them repeated and/or comma-separated."""
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pixery_widgets.sim",
        description="Serve a stand-in for the self-hosted SDXL server (no GPU needed).",
    )
    _add_serving_flags(parser)
    _add_menu_flags(parser)
    _add_behaviour_flags(parser)
    return parser


def _add_serving_flags(parser: argparse.ArgumentParser) -> None:
    """Where the simulators listen, how many, and how long their work takes."""
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    add("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    add(
        "--servers",
        type=int,
        default=1,
        metavar="N",
        help="serve N independent simulators on ports PORT, PORT+1, ... (default 1; "
        "with --port 0, on free ports); the other flags apply to each",
    )
    add("--gen-seconds", type=float, default=1.0, help="time each generation takes (default 1.0)")
    add("--switch-seconds", type=float, default=0.5, help="time a model switch takes (default 0.5)")


def _add_menu_flags(parser: argparse.ArgumentParser) -> None:
    """What the server offers: its models, LoRAs, the model loaded at start, IP-Adapter."""
    add = parser.add_argument
    add(
        "--models",
        action="append",
        default=[],
        metavar="A,B",
        help=f"the menu (default {','.join(MODELS)})",
    )
    add(
        "--missing",
        action="append",
        default=[],
        metavar="MODEL",
        help="a model whose checkpoint is not downloaded",
    )
    loras = parser.add_mutually_exclusive_group()
    loras.add_argument(
        "--loras", default=",".join(DEFAULT_LORAS), metavar="A,B", help="LoRA stems to list"
    )
    loras.add_argument("--no-loras", action="store_true", help="list no LoRAs")
    start = parser.add_mutually_exclusive_group()
    start.add_argument(
        "--start-model",
        default="animagine",
        metavar="NAME[,NAME]",
        help="model loaded at start; with --servers, one per server in turn (default animagine)",
    )
    start.add_argument("--no-model-loaded", action="store_true", help="start with no model loaded")
    add(
        "--no-ip-adapter",
        action="store_true",
        help="run without IP-Adapter (references are ignored)",
    )


def _add_behaviour_flags(parser: argparse.ArgumentParser) -> None:
    """How it draws and behaves: pictures, the GPU it reports, faults, idling."""
    add = parser.add_argument
    add(
        "--texture",
        choices=TEXTURES,
        default="flat",
        help="pictures: flat shapes (~60 KB PNG at 1024x1024, the default), photo (~1.5 MB) "
        "or photo-heavy (~3 MB)",
    )
    add("--gpu-name", default="Simulated RTX 4090", help="GPU name reported by /health")
    add(
        "--fault",
        action="append",
        default=[],
        metavar="ROUTE=KIND[:N]",
        help=f"inject a fault, optionally for the next N requests only; kinds: {', '.join(k.value for k in FaultKind)}",
    )
    add("--idle-timeout-minutes", type=float, default=60, help="reported idle timeout (default 60)")
    add("--exit-when-idle", action="store_true", help="really shut down after the idle timeout")


def start_models(args: argparse.Namespace) -> list[str | None]:
    """The model each server starts with, dealt out in turn: --start-model A,B,C."""
    return [None] if args.no_model_loaded else list(_names([args.start_model]))


def config_from_args(args: argparse.Namespace) -> SimConfig:
    return SimConfig(
        gen_seconds=args.gen_seconds,
        switch_seconds=args.switch_seconds,
        missing=set(_names(args.missing)),
        loras=[] if args.no_loras else _names([args.loras]),
        start_loaded=(start_models(args) or [None])[0],
        available_models=_names(args.models) or list(MODELS),
        ip_adapter_loaded=not args.no_ip_adapter,
        gpu_name=args.gpu_name or None,
        idle_timeout_minutes=args.idle_timeout_minutes,
        exit_when_idle=args.exit_when_idle,
        faults=dict(parse_fault_spec(spec) for spec in args.fault),
        texture=args.texture,
    )


def serve_one(config: SimConfig, host: str, port: int) -> int:
    """One simulator, served by uvicorn on the main thread (it handles Ctrl-C and SIGTERM)."""
    try:
        sock = bind_socket(host, port)
    except (OSError, OverflowError) as exc:
        print(f"pixery simulator: cannot listen on port {port}: {exc}", file=sys.stderr)
        return 1
    host, port = sock.getsockname()[:2]
    server: uvicorn.Server | None = None

    def exit_when_idle() -> None:
        print("pixery simulator: idle timeout reached, shutting down", flush=True)
        if server is not None:
            server.should_exit = True

    app = create_app(config, on_idle_exit=exit_when_idle)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", http="h11", ws="none", timeout_graceful_shutdown=1)
    )
    quiet_uvicorn_logs()  # after uvicorn's own logging set-up
    shown = f"[{host}]" if ":" in host else host
    print(f"pixery simulator serving on http://{shown}:{port}", flush=True)
    print(f"SELFHOSTED_API_URL=http://{shown}:{port}", flush=True)
    server.run(sockets=[sock])
    return 0


def serve_pool(pool: SimPool) -> int:
    """Several simulators on background threads until Ctrl-C, SIGTERM, or all are idle."""
    with interrupt_event() as interrupted:
        try:
            pool.start()
        except (OSError, OverflowError) as exc:
            print(f"pixery simulator: cannot listen on every port: {exc}", file=sys.stderr)
            return 1
        try:
            for url in pool.urls:
                print(f"pixery simulator serving on {url}", flush=True)
            print(f"SELFHOSTED_API_URL={pool.selfhosted_api_url}", flush=True)
            if not pool.wait(interrupted):
                print("pixery simulator: every server reached its idle timeout", flush=True)
        finally:
            pool.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
        pool = SimPool(
            args.servers, config, host=args.host, port=args.port, start_loaded=start_models(args)
        )
    except ValueError as exc:
        parser.error(str(exc))
    if args.servers == 1:
        return serve_one(pool.servers[0].config, args.host, args.port)
    return serve_pool(pool)


if __name__ == "__main__":
    sys.exit(main())
