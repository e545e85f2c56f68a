"""``python -m pixery_widgets.sim --port 8000``: serve the simulator until interrupted."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import uvicorn

from ._app import create_app
from ._config import DEFAULT_LORAS, MODELS, SimConfig
from ._draw import TEXTURES
from ._faults import FaultKind, parse_fault_spec
from ._server import bind_socket, quiet_uvicorn_logs


def _names(values: list[str]) -> list[str]:
    """Flags that take names accept them repeated and/or comma-separated."""
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pixery_widgets.sim",
        description="Serve a stand-in for the self-hosted SDXL server (no GPU needed).",
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    add("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    add("--gen-seconds", type=float, default=1.0, help="time each generation takes (default 1.0)")
    add("--switch-seconds", type=float, default=0.5, help="time a model switch takes (default 0.5)")
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
        "--start-model", default="animagine", metavar="NAME", help="model loaded at start"
    )
    start.add_argument("--no-model-loaded", action="store_true", help="start with no model loaded")
    add(
        "--no-ip-adapter",
        action="store_true",
        help="run without IP-Adapter (references are ignored)",
    )
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
    return parser


def config_from_args(args: argparse.Namespace) -> SimConfig:
    return SimConfig(
        gen_seconds=args.gen_seconds,
        switch_seconds=args.switch_seconds,
        missing=set(_names(args.missing)),
        loras=[] if args.no_loras else _names([args.loras]),
        start_loaded=None if args.no_model_loaded else args.start_model,
        available_models=_names(args.models) or list(MODELS),
        ip_adapter_loaded=not args.no_ip_adapter,
        gpu_name=args.gpu_name or None,
        idle_timeout_minutes=args.idle_timeout_minutes,
        exit_when_idle=args.exit_when_idle,
        faults=dict(parse_fault_spec(spec) for spec in args.fault),
        texture=args.texture,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    sock = bind_socket(args.host, args.port)
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
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
