"""`python -m gimefive_tf.evaluate`: accuracy, per-class report, confusion matrix, calibration.

For each --data: accuracy, macro F1, per-class precision/recall/F1/support, the confusion matrix
(rows = true labels, columns = predictions, in the fixed emotion order) as counts and
row-normalized, as CSV and as a heatmap like the paper's figure, and the expected calibration
error with a reliability diagram. Several --data give one row each, like the paper's Table 2.

`--crop face` evaluates labeled photos that are not face crops yet, through the library's face
pipeline (the one `predict` uses): it reports the share of photos where a face was found, the
accuracy over those faces (the largest face of each photo), and the accuracy over all photos
(a photo without a face counts as wrong), so the real path can be measured on your own photos.
"""

import pathlib

from gimefive_tf.cli import (
    ArgumentParser, add_data_arguments, add_face_arguments, add_model_argument, command,
    format_table, positive_int, print_json, print_skipped, progress)
from gimefive_tf.evaluate import evaluate_table, write_outputs


def build_parser():
    parser = ArgumentParser(
        prog="gimefive-evaluate",
        description="Evaluate a model on one or more labeled datasets.")
    add_model_argument(parser)
    add_data_arguments(parser, "labeled dataset: a folder in any layout or a labels CSV; "
                       "several give one row each", several=True)
    parser.add_argument("--split", help="use only this split of each dataset")
    parser.add_argument("--out", help="folder for CSV and PNG reports (one sub-folder per --data)")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a non-empty --out, replacing files of the same names")
    parser.add_argument("--batch-size", type=positive_int, default=64)
    add_face_arguments(parser)
    parser.add_argument("--crop", choices=("none", "face"), default="none",
                        help="none: the images are face crops (default); face: photos, found "
                             "and framed by the face pipeline (reports faces found)")
    parser.add_argument("--json", action="store_true", help="print metrics as JSON")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)  # before the imports that load TensorFlow
    from gimefive_tf.analyze import FacePipeline
    from gimefive_tf.data import read_dataset

    if args.out:  # claimed before any work, as every command claims its --out
        from gimefive_tf.outputs import claim_folder

        claim_folder(args.out, args.overwrite, create=False)
    tables = [read_dataset(path, layout=args.layout, split=args.split).sample(args.limit)
              for path in args.data]
    for table in tables:  # unreadable images are left out of the scores, and said so
        print_skipped(table.skipped)
    pipeline = FacePipeline(args.model, args.detector, args.framing, args.crop,
                            batch_size=args.batch_size, turned=not args.upright_only)
    reports = []
    for path, table in zip(args.data, tables):
        report = {"data": path, **evaluate_table(pipeline, table, progress),
                  "skipped": len(table.skipped)}
        reports.append(report)
        if args.out:
            name = pathlib.Path(path.rstrip("/")).stem
            folder = pathlib.Path(args.out) / (name if len(args.data) > 1 else "")
            write_outputs(report, folder, name, overwrite=args.overwrite)
    if args.json:
        compact = [{k: v for k, v in r.items() if k != "calibration_bins"} for r in reports]
        print_json(compact[0] if len(compact) == 1 else compact)
    else:
        columns = [("data", "data"), ("images", "images"), ("accuracy", "accuracy"),
                   ("macro_f1", "macro F1"), ("ece", "ECE")]
        if args.crop == "face":
            columns[1:3] = [("photos", "photos"), ("faces_found", "faces found"),
                            ("accuracy", "accuracy (found)"), ("accuracy_all", "accuracy (all)")]
        rows = [{**r, **{k: f"{r[k]:.4f}" for k in ("accuracy", "macro_f1", "ece", "faces_found",
                                                   "accuracy_all") if k in r}}
                for r in reports]
        print(format_table(rows, columns))
    return 0


entry_point = command(main)


if __name__ == "__main__":
    entry_point()
