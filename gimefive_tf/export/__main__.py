"""`python -m gimefive_tf.export`: SavedModel for TF Serving and TFLite for phones, with a report.

The command line only: what it writes (the SavedModel's signatures, the TFLite files, the
report) is described and built by the library, `gimefive_tf.export`.
"""

import json
import pathlib
import shutil

import numpy as np

from gimefive_tf.cli import (
    ArgumentParser, add_model_argument, command, format_table, positive_int, print_json,
    progress)
from gimefive_tf.choices import LAYOUTS
from gimefive_tf.errors import GiMeFiveError
from gimefive_tf.export import (FORMATS, NEEDS_CALIBRATION, TFLITE_FILES, build_report,
                                export_savedmodel, export_tflite)
from gimefive_tf.labels import EMOTIONS
from gimefive_tf.outputs import atomic_path, writable_folder, write_text


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


def _faces(path, args, size, labels=False):
    from gimefive_tf.data import load_arrays, read_dataset

    table = read_dataset(path, layout=args.layout).sample(args.limit)
    images, label_ids = load_arrays(table, size)
    return (images, label_ids) if labels else images


def main(argv=None):
    from gimefive_tf.loading import load_model

    args = build_parser().parse_args(argv)
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise GiMeFiveError(f"unknown format(s) {', '.join(unknown) or '(none)'}; choose from "
                            f"{', '.join(FORMATS)}")
    if "tflite-int8" in formats and not args.calibration_data:
        raise GiMeFiveError(NEEDS_CALIBRATION)
    model = load_model(args.model)
    size = model.input_shape[1]
    layer = None  # the default explanation's layer
    calibration = _faces(args.calibration_data, args, size) \
        if args.calibration_data else None
    out = pathlib.Path(args.out)
    saved_dir = out / "savedmodel" / args.name / str(args.version)
    tflite_dir = out / "tflite"
    targets = ([saved_dir] if "savedmodel" in formats else []) + [
        tflite_dir / f"{args.name}_{TFLITE_FILES[f]}.tflite" for f in formats if f in TFLITE_FILES]
    # A version folder without saved_model.pb is what a killed export left: replaced freely.
    existing = [str(t) for t in targets if t.exists() and not (
        t == saved_dir and not (t / "saved_model.pb").is_file())]
    if (out / "report.json").exists():
        existing.append(str(out / "report.json"))
    if existing and not args.overwrite:
        raise GiMeFiveError(f"{', '.join(existing)} already exist(s); nothing was overwritten "
                            "(pass --overwrite, another --version or another --out)")
    writable_folder(tflite_dir if any(f in TFLITE_FILES for f in formats) else out)
    artifacts = {}
    for kind in progress(formats, "exporting"):
        if kind == "savedmodel":
            partial = saved_dir.with_name(f".{saved_dir.name}.partial")
            shutil.rmtree(partial, ignore_errors=True)
            export_savedmodel(model, partial, layer, size)
            if saved_dir.exists():
                shutil.rmtree(saved_dir)
            partial.rename(saved_dir)  # a version appears whole, or not at all
            artifacts[kind] = saved_dir
        else:
            path = tflite_dir / f"{args.name}_{TFLITE_FILES[kind]}.tflite"
            with atomic_path(path) as temporary:
                export_tflite(model, temporary, TFLITE_FILES[kind], layer, size, calibration)
            artifacts[kind] = path
    if tflite_dir.exists():
        write_text(tflite_dir / "labels.txt", "\n".join(EMOTIONS) + "\n")
    if args.sample_data:
        sample = _faces(args.sample_data, args, size)
    elif calibration is not None:
        sample = calibration
    else:
        sample = np.random.default_rng(0).integers(0, 256, (32, size, size, 3)).astype(np.uint8)
    eval_set = _faces(args.eval_data, args, size, labels=True) if args.eval_data else None
    rows = build_report(model, artifacts, sample, eval_set)
    write_text(out / "report.json", json.dumps(rows, indent=2))
    if args.json:
        print_json(rows)
    else:
        columns = [("artifact", "artifact"), ("size_mb", "MB"), ("top1_agreement", "top-1 agree"),
                   ("max_abs_diff", "max |dp|"), ("latency_ms", "latency ms")]
        if eval_set is not None:
            columns.append(("accuracy", "accuracy"))
        print(format_table([{k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in r.items()}
                            for r in rows], columns))
    return 0


entry_point = command(main)


if __name__ == "__main__":
    entry_point()
