"""Dataset tools behind `python -m gimefive_tf.data`: split, merge and export to the csv layout."""

import pathlib

import numpy as np

from gimefive_tf.data.pipeline import decoded_images
from gimefive_tf.data.split import stratified_split
from gimefive_tf.errors import GiMeFiveError
from gimefive_tf.labels import EMOTIONS


def refuse_existing(paths, overwrite=False):
    """Refuse to write over any of `paths` without `overwrite`, and check their folders can be
    written in (made now), before any work."""
    existing = [str(p) for p in paths if pathlib.Path(p).exists()]
    if existing and not overwrite:
        raise GiMeFiveError(f"{', '.join(existing[:3])} already exist(s); nothing was "
                            "overwritten: choose another --out")
    from gimefive_tf.outputs import writable_folder

    folders = {pathlib.Path(p).parent for p in paths}
    for folder in sorted(folders):  # a read-only or file --out is refused before any work
        writable_folder(folder)


def write_labels_csv(path, rows, header=("file", "label")):
    """Write a labels CSV (with a header, which the csv reader recognizes and skips), whole or
    not at all."""
    import csv

    from gimefive_tf.outputs import atomic_path

    with atomic_path(path) as temporary, open(temporary, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def split_to_csv(table, out, fraction=0.1, seed=0, overwrite=False):
    """Write out/train_labels.csv and out/val_labels.csv pointing at the original images
    (existing ones replaced only with `overwrite`)."""
    if table.pixels is not None:
        raise GiMeFiveError("this dataset keeps its images inside a CSV; run export-csv first, "
                            "then split the exported folder")
    out = pathlib.Path(out)
    targets = [out / "train_labels.csv", out / "val_labels.csv"]
    refuse_existing(targets, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    parts = stratified_split(table, fraction, seed=seed)
    for target, part in zip(targets, parts):
        sources = [str(pathlib.Path(s).resolve()) for s in part.frame["source"]]
        write_labels_csv(target, zip(sources, part.labels.tolist()))
    return {"train": parts[0].summary(), "val": parts[1].summary(),
            "files": [str(t) for t in targets]}


def export_to_csv_layout(table, out, image_size=64, prefix="", progress=None,
                         overwrite=False):
    """Write every image as a size x size RGB JPG in out/<split or 'all'>/ plus labels CSVs.

    Returns {split: (csv path, [(file name, label, original source), ...])}. Images pass through
    the pipeline's own decoder, so what is written is what training would have seen. Each CSV
    names its files relative to `out`, so the folder reads back with the csv layout. An
    earlier export's files of the same names are replaced only with `overwrite`.
    """
    import cv2

    out = pathlib.Path(out)
    splits = table.frame["split"].replace("", "all").to_numpy()
    csv_paths = {s: out / f"{s}_labels.csv" for s in sorted(set(splits))}
    refuse_existing(list(csv_paths.values()) + [out / s for s in csv_paths], overwrite)
    for split in csv_paths:
        (out / split).mkdir(parents=True, exist_ok=True)
    rows = {split: [] for split in csv_paths}
    images = decoded_images(table, image_size, cache=False).as_numpy_iterator()
    if progress is not None:
        images = progress(images, total=len(table))
    for index, (image, label) in enumerate(images):
        split = splits[index]
        name = f"{prefix}{index:06d}_{EMOTIONS[label]}.jpg"
        bgr = np.ascontiguousarray(image[..., ::-1])
        if not cv2.imwrite(str(out / split / name), bgr, [cv2.IMWRITE_JPEG_QUALITY, 95]):
            raise GiMeFiveError(f"could not write {out / split / name}")
        rows[split].append((name, int(label), table.frame["source"].iat[index]))
    for split, items in rows.items():
        write_labels_csv(csv_paths[split], [(f"{split}/{name}", label) for name, label, _ in items])
    return {split: (csv_paths[split], rows[split]) for split in csv_paths}


def named_by_earlier(tables, drop=False):
    """(tables, count): the rows naming an image that an earlier table already names (two
    labels files over one folder would double it in a merge), counted; with `drop`, left out
    of the later tables (a table left with none, left out). Tables of CSV pixels name no file
    and pass as they are."""
    seen, count, kept = set(), 0, []
    for table in tables:
        if table.pixels is not None:
            kept.append(table)
            continue
        files = [str(pathlib.Path(source).resolve()) for source in table.frame["source"]]
        again = np.array([file in seen for file in files], bool)
        count += int(again.sum())
        seen.update(files)
        if drop and again.all():
            continue  # every image of it is in an earlier table
        kept.append(table.subset(~again) if drop and again.any() else table)
    return kept, count


def merge_to_csv_layout(tables, out, image_size=64, progress=None, overwrite=False):
    """The paper's aggregated set: every source exported into one folder, one CSV with a
    `source` column naming the dataset each image came from. An earlier merge in `out` is
    replaced only with `overwrite` (once the new one is whole)."""
    import shutil

    out = pathlib.Path(out)
    target = out / "merged_labels.csv"
    refuse_existing([target, out / "merged"], overwrite)
    # Everything goes into a hidden folder first: a merge that fails half-way (or is killed)
    # leaves no half-filled `merged/` and no CSV, and a rerun starts clean.
    partial = out / ".merged.partial"
    shutil.rmtree(partial, ignore_errors=True)
    rows = []
    try:
        for number, table in enumerate(tables):
            name = pathlib.Path(table.root).stem or "source"
            if (partial / name).exists():  # two datasets in folders of the same name
                name = f"{name}{number}"
            exported = export_to_csv_layout(table, partial / name, image_size,
                                            prefix=f"{name}_", progress=progress)
            for split, (_, items) in exported.items():
                rows += [(f"merged/{name}/{split}/{file}", label, name)
                         for file, label, _ in items]
        earlier = out / ".merged.earlier"
        if (out / "merged").exists():  # overwrite: the earlier merge goes once this one is whole
            shutil.rmtree(earlier, ignore_errors=True)
            (out / "merged").rename(earlier)
        partial.rename(out / "merged")
        shutil.rmtree(earlier, ignore_errors=True)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    write_labels_csv(target, rows, header=("file", "label", "source"))
    return target, len(rows)


def plot_counts(summaries, path=None):
    """Images per emotion of one or more datasets (their `summary()` dicts), side by side."""
    import numpy as np
    from matplotlib.figure import Figure

    from gimefive_tf.outputs import finish_figure

    figure = Figure(figsize=(8, 4))
    axis = figure.subplots()
    width = 0.8 / len(summaries)
    for number, summary in enumerate(summaries):
        counts = [summary["per_class"][e] for e in EMOTIONS]
        positions = np.arange(len(EMOTIONS)) + number * width
        bars = axis.bar(positions, counts, width, label=pathlib.Path(summary["path"]).name)
        axis.bar_label(bars, fontsize=7)
    axis.set_xticks(np.arange(len(EMOTIONS)) + width * (len(summaries) - 1) / 2, EMOTIONS)
    axis.set_ylabel("images")
    axis.legend()
    figure.tight_layout()
    return finish_figure(figure, path, dpi=100)
