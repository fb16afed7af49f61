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

import json
import pathlib
import sys

import numpy as np

from gimefive_tf.cli import (
    ArgumentParser, add_data_arguments, add_face_arguments, add_model_argument, command,
    format_table, positive_int, print_json, progress)
from gimefive_tf.errors import GiMeFiveError
from gimefive_tf.labels import EMOTIONS

ECE_BINS = 15


def confusion_matrix(labels, predictions, num_classes=len(EMOTIONS)):
    """Counts[true, predicted]."""
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (np.asarray(labels), np.asarray(predictions)), 1)
    return matrix


def expected_calibration_error(probabilities, labels, bins=ECE_BINS):
    """(ece, per-bin rows): confidence vs accuracy over equal-width confidence bins."""
    confidence = probabilities.max(1)
    correct = probabilities.argmax(1) == labels
    edges = np.linspace(0, 1, bins + 1)
    rows, ece = [], 0.0
    for low, high in zip(edges[:-1], edges[1:]):
        members = (confidence > low) & (confidence <= high)
        if members.any():
            gap = abs(correct[members].mean() - confidence[members].mean())
            ece += members.mean() * gap
            rows.append({"low": low, "high": high, "count": int(members.sum()),
                         "accuracy": float(correct[members].mean()),
                         "confidence": float(confidence[members].mean())})
    return float(ece), rows


def classification_report(labels, probabilities):
    """Every metric of one evaluation as plain Python values (what --json prints)."""
    labels = np.asarray(labels)
    probabilities = np.asarray(probabilities)
    predictions = probabilities.argmax(1)
    matrix = confusion_matrix(labels, predictions, probabilities.shape[1])
    per_class, f1s = {}, []
    for index, name in enumerate(EMOTIONS[: probabilities.shape[1]]):
        true_positive = matrix[index, index]
        predicted, actual = matrix[:, index].sum(), matrix[index].sum()
        precision = true_positive / predicted if predicted else 0.0
        recall = true_positive / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {"precision": float(precision), "recall": float(recall),
                           "f1": float(f1), "support": int(actual)}
        if actual or predicted:  # sklearn's macro average: classes seen in truth or predictions
            f1s.append(f1)
    ece, bins = expected_calibration_error(probabilities, labels)
    with np.errstate(invalid="ignore", divide="ignore"):
        normalized = np.nan_to_num(matrix / matrix.sum(1, keepdims=True))
    return {"images": int(len(labels)), "accuracy": float((predictions == labels).mean()),
            "macro_f1": float(np.mean(f1s)) if f1s else 0.0, "per_class": per_class,
            "confusion": matrix.tolist(), "confusion_normalized": normalized.round(4).tolist(),
            "ece": ece, "calibration_bins": bins}


def compare_reports(reports):
    """{name: classification report} side by side: accuracy, macro F1 and each emotion's
    recall, one row per report (a DataFrame)."""
    import pandas as pd

    return pd.DataFrame([{"model": name, "images": report["images"],
                          "accuracy": round(report["accuracy"], 4),
                          "macro_f1": round(report["macro_f1"], 4),
                          **{f"recall {emotion}": round(values["recall"], 3)
                             for emotion, values in report["per_class"].items()}}
                         for name, report in reports.items()]).set_index("model")


def plot_confusion(report, path=None, title=""):
    from matplotlib.figure import Figure

    from gimefive_tf.outputs import finish_figure

    counts = np.array(report["confusion"])
    normalized = np.array(report["confusion_normalized"])
    names = list(report["per_class"])
    figure = Figure(figsize=(6.5, 5.5))
    axis = figure.subplots()
    image = axis.imshow(normalized, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(names)):
        for j in range(len(names)):
            color = "white" if normalized[i, j] > 0.5 else "black"
            axis.text(j, i, f"{normalized[i, j]:.2f}\n({counts[i, j]})", ha="center",
                      va="center", fontsize=8, color=color)
    axis.set_xticks(range(len(names)), names, rotation=45, ha="right")
    axis.set_yticks(range(len(names)), names)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(f"{title}: accuracy {report['accuracy']:.3f}")
    figure.colorbar(image, ax=axis, fraction=0.046)
    figure.tight_layout()
    return finish_figure(figure, path, dpi=110)


def plot_reliability(report, path=None, title=""):
    from matplotlib.figure import Figure

    from gimefive_tf.outputs import finish_figure

    bins = report["calibration_bins"]
    figure = Figure(figsize=(5, 5))
    axis = figure.subplots()
    centers = [(b["low"] + b["high"]) / 2 for b in bins]
    axis.bar(centers, [b["accuracy"] for b in bins], width=1 / ECE_BINS, edgecolor="black",
             alpha=0.7, label="accuracy")
    axis.plot([0, 1], [0, 1], "k--", label="perfect calibration")
    axis.plot(centers, [b["confidence"] for b in bins], "r.", label="mean confidence")
    axis.set_xlabel("confidence")
    axis.set_ylabel("accuracy")
    axis.set_title(f"{title}: ECE {report['ece']:.3f}")
    axis.legend(loc="upper left")
    figure.tight_layout()
    return finish_figure(figure, path, dpi=110)


def write_outputs(report, folder, title):
    """CSV, JSON and PNG files of one report in `folder` (created; existing files refused)."""
    import pandas as pd

    folder = pathlib.Path(folder)
    names = list(report["per_class"])
    files = {"metrics.json", "per_class.csv", "confusion.csv", "confusion_normalized.csv",
             "confusion.png", "reliability.png"}
    clashes = [name for name in files if (folder / name).exists()]
    if clashes:
        raise GiMeFiveError(f"{folder} already holds {', '.join(sorted(clashes))}; nothing was "
                            "overwritten: pass another --out")
    from gimefive_tf.outputs import write_text, writable_folder

    writable_folder(folder)
    write_text(folder / "metrics.json", json.dumps(report, indent=2))
    write_text(folder / "per_class.csv",
               pd.DataFrame(report["per_class"]).T.to_csv(index_label="emotion"))
    for key in ("confusion", "confusion_normalized"):
        write_text(folder / f"{key}.csv", pd.DataFrame(report[key], index=names, columns=names)
                   .to_csv(index_label="true\\predicted"))
    plot_confusion(report, folder / "confusion.png", title)
    plot_reliability(report, folder / "reliability.png", title)


def evaluate_table(pipeline, table):
    """The classification report of one labeled table: on the images as face crops, or with
    the pipeline's crop mode "face", on the largest face found in each photo."""
    from gimefive_tf.data import load_arrays

    if pipeline.crop == "none":
        images, labels = load_arrays(table, pipeline.size)
        return classification_report(labels, pipeline.classify_all(images, progress))
    sources = table.frame["source"].tolist()
    pixels = table.pixels if table.pixels is not None else [None] * len(sources)
    first = {}
    for result in pipeline.run(list(zip(sources, pixels)), progress=progress):
        if result.scores is not None and result.input not in first:
            first[result.input] = result.probabilities
    found = np.array([source in first for source in sources])
    labels = table.labels
    if not found.any():
        raise GiMeFiveError("no face was found in any image; if they are face crops already, "
                            "evaluate without --crop face")
    probabilities = np.stack([first[s] for s, hit in zip(sources, found) if hit])
    report = classification_report(labels[found], probabilities)
    correct = int((probabilities.argmax(1) == labels[found]).sum())
    return {**report, "photos": len(sources), "faces_found": float(found.mean()),
            "accuracy_all": correct / len(sources)}


def build_parser():
    parser = ArgumentParser(
        prog="gimefive-evaluate",
        description="Evaluate a model on one or more labeled datasets.")
    add_model_argument(parser)
    add_data_arguments(parser, "labeled dataset: a folder in any layout or a labels CSV; "
                       "several give one row each", several=True)
    parser.add_argument("--split", help="use only this split of each dataset")
    parser.add_argument("--out", help="folder for CSV and PNG reports (one sub-folder per --data)")
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

    tables = [read_dataset(path, layout=args.layout, split=args.split).sample(args.limit)
              for path in args.data]
    for table in tables:  # unreadable images are left out of the scores, and said so
        for source, reason in table.skipped:
            print(f"skipped {source}: {reason}", file=sys.stderr)
    pipeline = FacePipeline(args.model, args.detector, args.framing, args.crop,
                            batch_size=args.batch_size, turned=not args.upright_only)
    reports = []
    for path, table in zip(args.data, tables):
        report = {"data": path, **evaluate_table(pipeline, table), "skipped": len(table.skipped)}
        reports.append(report)
        if args.out:
            name = pathlib.Path(path.rstrip("/")).stem
            folder = pathlib.Path(args.out) / (name if len(args.data) > 1 else "")
            write_outputs(report, folder, name)
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
