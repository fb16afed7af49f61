"""`python -m gimefive_tf.serve`: serve a model over TF Serving's REST API, with /v1/analyze and
a web page at `/`. Binds 127.0.0.1:8501 unless told otherwise; stops gracefully on SIGTERM
(in-flight requests finish)."""

import argparse
import pathlib
import sys
import socket

from gimefive_tf.cli import (
    MODEL_HELP, ArgumentParser, add_face_arguments, command, positive_float, positive_int)
from gimefive_tf.errors import GiMeFiveError
from gimefive_tf.serve.protocol import BODY_TIMEOUT_S, http_protocol


def port_number(text):
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (1-65535)")
    return port


def build_parser():
    parser = ArgumentParser(
        prog="gimefive-serve", description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", metavar="PATH.keras|NAME",
                        help=MODEL_HELP + "; served as version 1")
    source.add_argument("--savedmodel", metavar="DIR", help="an export's savedmodel/<name>/ "
                        "folder: every numbered version, the newest by default")
    parser.add_argument("--name", help="the model's name in /v1/models/<name> (default: the "
                        "savedmodel folder's name, or 'gimefive')")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=port_number, default=8501, help="port (default 8501)")
    parser.add_argument("--no-batching", dest="batching", action="store_false",
                        help="run every request on its own instead of merging close ones")
    parser.add_argument("--max-batch-size", type=positive_int, default=32,
                        help="rows merged into one model call at most (32)")
    parser.add_argument("--batch-timeout-ms", type=positive_float, default=5.0,
                        help="how long the first request of a batch waits for others (5)")
    parser.add_argument("--max-body-mb", type=positive_float, default=10.0,
                        help="larger requests get 413 (10)")
    parser.add_argument("--body-timeout-s", type=positive_float, default=BODY_TIMEOUT_S,
                        help="a request whose headers or body send nothing for this long is "
                             f"answered 408 and closed ({BODY_TIMEOUT_S:g})")
    parser.add_argument("--app", metavar="DIR", help="also serve the offline web app an export "
                        "wrote (export --formats web: its web/ folder) at /app/")
    add_face_arguments(parser)
    return parser


def check_port(host, port):
    """GiMeFiveError now, rather than a server log line later, when the address is taken."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as error:
        raise GiMeFiveError(f"cannot listen on {host}:{port} ({error.strerror}); pass another "
                            "--port or --host") from None


def load_servable(args):
    from gimefive_tf.loading import load_model
    from gimefive_tf.serve.servable import Servable

    if args.savedmodel:
        servable = Servable.from_savedmodel(args.savedmodel)
        if args.name:
            servable.name = args.name
        return servable
    return Servable.from_keras(load_model(args.model), args.name or "gimefive")


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.savedmodel and not pathlib.Path(args.savedmodel).is_dir():
        raise GiMeFiveError(f"{args.savedmodel} is not a folder; pass an export's "
                            "savedmodel/<name>/")
    if args.app and not (pathlib.Path(args.app) / "sw.js").is_file():
        raise GiMeFiveError(f"{args.app} is not a web app; pass the web/ folder that "
                            "python -m gimefive_tf.export --formats web wrote")
    if args.model:
        from gimefive_tf.loading import model_file

        model_file(args.model)
    check_port(args.host, args.port)
    import uvicorn

    from gimefive_tf.serve.app import create_app

    servable = load_servable(args)
    app = create_app(servable, args.detector, args.framing, args.batching,
                     args.max_batch_size, args.batch_timeout_ms,
                     int(args.max_body_mb * 1024 * 1024),
                     calibration_model=pathlib.Path(args.model) if args.model else None,
                     turned=not args.upright_only, body_timeout_s=args.body_timeout_s,
                     app_folder=args.app)
    from gimefive_tf.export import MIRRORLESS_EXPORT, mirrored

    if not mirrored(servable.versions[servable.latest]):
        print(f"note: {MIRRORLESS_EXPORT.format(name=servable.source)}", file=sys.stderr)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"serving {servable.name} (versions {', '.join(map(str, sorted(servable.versions)))}, "
          f"batching {'on' if args.batching else 'off'}) at http://{shown}:{args.port}/"
          + (f"; the offline app at http://{shown}:{args.port}/app/" if args.app else ""),
          flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False,
                timeout_graceful_shutdown=30, http=http_protocol(args.body_timeout_s))
    return 0


entry_point = command(main)


if __name__ == "__main__":
    entry_point()
