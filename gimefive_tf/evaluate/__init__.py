"""Accuracy, per-class report, confusion matrix and calibration: the library half of `python -m
gimefive_tf.evaluate` (its command line is `evaluate/__main__.py`).

`evaluate_table` scores a labeled table through the face pipeline: accuracy, macro F1,
per-class precision/recall/F1/support, the confusion matrix (rows = true labels, columns =
predictions, in the fixed emotion order), the expected calibration error and its bins; with a
pipeline that crops faces (photos), the share of photos where a face was found, the accuracy
over those faces (the largest face of each photo) and over all photos (a photo without a face
counts as wrong). `write_outputs` writes them as CSV, JSON and figures like the paper's.
"""

import json
import pathlib

import numpy as np

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


def write_outputs(report, folder, title, overwrite=False):
    """CSV, JSON and PNG files of one report in `folder` (created; existing files refused unless
    `overwrite`)."""
    import pandas as pd

    folder = pathlib.Path(folder)
    names = list(report["per_class"])
    files = {"metrics.json", "per_class.csv", "confusion.csv", "confusion_normalized.csv",
             "confusion.png", "reliability.png"}
    clashes = [name for name in files if (folder / name).exists()]
    if clashes and not overwrite:
        raise GiMeFiveError(f"{folder} already holds {', '.join(sorted(clashes))}; nothing was "
                            "overwritten (pass --overwrite or another --out)")
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


def evaluate_table(pipeline, table, progress=None):
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
