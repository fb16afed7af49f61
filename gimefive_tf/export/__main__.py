"""`python -m gimefive_tf.export`: SavedModel for TF Serving and TFLite for phones, with a report.

The command line only: what it writes (the SavedModel's signatures, the TFLite files, the
report) is described and built by the library, `gimefive_tf.export`.
"""

from gimefive_tf.cli import (
    ArgumentParser, add_model_argument, command, format_table, positive_int, print_json,
    progress)
from gimefive_tf.choices import LAYOUTS
from gimefive_tf.export import FORMATS, export_model


def plain_name(text):
    """An argparse type: a name that stays one path component (no folders, no dot files)."""
    import argparse
    import re

    if not re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]*", text):
        raise argparse.ArgumentTypeError(f"{text!r} must be a plain name (letters, digits, . _ -)")
    return text


def build_parser():
    parser = ArgumentParser(prog="gimefive-export", description=__doc__.split("\n\n")[0])
    add_model_argument(parser)
    parser.add_argument("--out", required=True, help="export folder")
    parser.add_argument("--formats", default="savedmodel,tflite",
                        help=f"comma-separated, from {','.join(FORMATS)} (savedmodel,tflite)")
    parser.add_argument("--calibration-data", help="real faces for tflite-int8 calibration")
    parser.add_argument("--sample-data", help="faces for the parity report (default: the "
                        "calibration data, else random pixels)")
    parser.add_argument("--eval-data", help="labeled data: accuracy of every artifact")
    parser.add_argument("--name", type=plain_name, default="gimefive",
                        help="model name in paths (gimefive; letters, digits, . _ -)")
    parser.add_argument("--version", type=positive_int, default=1, help="SavedModel version (1)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing export of this name and version")
    parser.add_argument("--layout", choices=LAYOUTS, help="layout of the data sets (detected)")
    parser.add_argument("--limit", type=positive_int, default=200,
                        help="images per data set (200; a seeded random subset)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    rows = export_model(args.model, args.out, formats, args.calibration_data, args.sample_data,
                        args.eval_data, args.name, args.version, args.overwrite, args.layout,
                        args.limit, progress=progress)
    if args.json:
        print_json(rows)
    else:
        columns = [("artifact", "artifact"), ("size_mb", "MB"), ("top1_agreement", "top-1 agree"),
                   ("max_abs_diff", "max |dp|"), ("latency_ms", "latency ms")]
        if args.eval_data:
            columns.append(("accuracy", "accuracy"))
        print(format_table([{key: f"{r[key]:.4g}" if isinstance(r.get(key), float) else
                             "-" if r.get(key) is None else r[key] for key, _ in columns}
                            for r in rows], columns))
    return 0


entry_point = command(main)


if __name__ == "__main__":
    entry_point()
