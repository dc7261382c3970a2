"""``python -m portrait_sdk.serve``: masks, mattes, effects and stats over HTTP (API docs at /docs), and the browser
demo at /, for the models of one folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from portrait_sdk import quiet
from portrait_sdk.serve.app import DEFAULT_TASKS_VISION, ServeConfig, create_app
from portrait_sdk.serve.uploads import UploadLimits


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    defaults, limits = ServeConfig(), UploadLimits()
    parser = argparse.ArgumentParser(prog="python -m portrait_sdk.serve", description=__doc__.replace("``", ""))
    parser.add_argument("--models", type=Path, default=defaults.models,
                        help="folder of <name>.tflite files with their <name>.json cards (default: %(default)s)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="(default: %(default)s)")
    parser.add_argument("--max-upload-bytes", type=int, default=limits.max_bytes,
                        help="largest request body accepted (default: %(default)s)")
    parser.add_argument("--max-pixels", type=int, default=limits.max_pixels,
                        help="largest image accepted, width x height (default: %(default)s)")
    parser.add_argument("--body-timeout", type=float, default=limits.body_timeout_s, metavar="SECONDS",
                        help="longest time a request body may take to arrive, else 408 (default: %(default)s)")
    parser.add_argument("--pool-size", type=int, default=defaults.pool_size,
                        help="interpreters per model, i.e. its requests in parallel (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=defaults.num_threads,
                        help="LiteRT threads per interpreter (default: %(default)s)")
    parser.add_argument("--tasks-vision", type=Path, default=DEFAULT_TASKS_VISION,
                        help="the @mediapipe/tasks-vision npm package the demo page loads (default: %(default)s)")
    parser.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    parser.add_argument("--verbose", action="store_true",
                        help="show OpenCV's and LiteRT's own log lines (XNNPACK), quiet by default")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    args = parse_args(argv)
    quiet.configure(args.verbose)
    try:
        limits = UploadLimits(args.max_upload_bytes, args.max_pixels, args.body_timeout)
        config = ServeConfig(models=args.models, limits=limits,
                             pool_size=args.pool_size, num_threads=args.threads, tasks_vision=args.tasks_vision)
        app = create_app(config)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
