"""Readers: any public FER dataset layout becomes one table of (image source, label 0..5).

Layouts:
  csv      a folder of images plus `file,label` CSV(s), header optional (the GiMeFive layout:
           RAF-DB/train_RAF_labels.csv naming files in RAF-DB/train/)
  folders  one sub-folder per class, by index or emotion name in any public spelling, possibly
           under train/ test/ split folders (AffectNet, CK+, TFEID, KDEF-style downloads)
  rafdb    RAF-DB's download: train|test/<1..7>/ folders and train_labels.csv / test_labels.csv
  fer2013  the original fer2013.csv (emotion,pixels,Usage) with 48x48 pixel strings

Classes outside the six (neutral, contempt) are dropped and counted; unreadable images are
skipped, counted and listed, never silently and never mid-epoch.
"""

import collections
import csv
import dataclasses
import os
import pathlib
import re

import numpy as np
import pandas as pd

from gimefive_tf.choices import FER2013_USAGES, LAYOUTS, check_choice
from gimefive_tf.errors import GiMeFiveError, first_line
from gimefive_tf.labels import (EMOTIONS, FER2013_CODES, RAFDB_CODES, canonical_name, label_id)
from gimefive_tf.pictures import TENSORFLOW_EXTENSIONS

# a dataset's images go through tf.data, so its files are the pictures TensorFlow decodes
IMAGE_EXTENSIONS = TENSORFLOW_EXTENSIONS
SPLIT_NAMES = ("train", "test", "val", "valid", "validation")


@dataclasses.dataclass
class LabeledImages:
    """A dataset as one table.

    frame: columns `source` (image path, or `fer2013.csv#row` for in-memory pixels), `label`
      (0..5) and `split` (train/test/... or "" when the layout has none).
    pixels: for in-memory layouts (fer2013), uint8 images (N, H, W, 1) in frame order; else None.
    dropped_by_split: count per (split, dropped class name), e.g. ("train", "neutral").
    skipped: (source, reason) for each unreadable or unusable image.
    """

    frame: pd.DataFrame
    layout: str
    root: str
    pixels: np.ndarray = None
    dropped_by_split: dict = dataclasses.field(default_factory=dict)
    skipped: list = dataclasses.field(default_factory=list)

    def __len__(self):
        return len(self.frame)

    @property
    def dropped(self):
        """Count per dropped class name (neutral, contempt, ...) over the table's splits."""
        totals = collections.Counter()
        for (_, name), count in self.dropped_by_split.items():
            totals[name] += count
        return dict(totals)

    @property
    def labels(self):
        return self.frame["label"].to_numpy(dtype=np.int64)

    def per_class(self):
        """Count per emotion name, in the fixed emotion order (zeros included)."""
        counts = np.bincount(self.labels, minlength=len(EMOTIONS))
        return {name: int(count) for name, count in zip(EMOTIONS, counts)}

    def splits(self):
        return sorted(set(self.frame["split"]))

    def subset(self, mask_or_index):
        """A new table with the selected rows (boolean mask or integer positions)."""
        index = np.flatnonzero(mask_or_index) if np.asarray(mask_or_index).dtype == bool \
            else np.asarray(mask_or_index, dtype=np.int64)
        pixels = None if self.pixels is None else self.pixels[index]
        return dataclasses.replace(self, frame=self.frame.iloc[index].reset_index(drop=True),
                                   pixels=pixels)

    def sample(self, limit, seed=0):
        """At most `limit` rows, a seeded random subset kept in table order (None: all)."""
        if limit is not None and limit < 1:
            raise GiMeFiveError(f"limit={limit!r} is not allowed; use an integer >= 1")
        if limit is None or limit >= len(self):
            return self
        return self.subset(np.sort(np.random.default_rng(seed).permutation(len(self))[:limit]))

    def select_split(self, split):
        """Only the rows of `split`; GiMeFiveError naming the available splits otherwise."""
        if split not in self.splits():
            raise GiMeFiveError(f"no split {split!r} in {self.root}; it has: "
                                f"{', '.join(s or '(none)' for s in self.splits())}")
        table = self.subset(self.frame["split"].to_numpy() == split)
        table.dropped_by_split = {key: count for key, count in self.dropped_by_split.items()
                                  if key[0] == split}
        return table

    def duplicates(self):
        """Rows naming an image another row already names (same file, counted once each)."""
        if self.pixels is not None:
            return 0
        return int(self.frame.duplicated(subset=["source", "split"]).sum())

    def without_duplicates(self):
        """The table with each (image, split) once: the first row kept."""
        return self.subset(~self.frame.duplicated(subset=["source", "split"]).to_numpy()) \
            if self.duplicates() else self

    def summary(self):
        """What `stats --json` prints."""
        return {"layout": self.layout, "path": self.root, "total": len(self),
                "per_class": self.per_class(), "dropped": dict(self.dropped),
                "skipped": len(self.skipped), "duplicates": self.duplicates()}


def read_dataset(path, layout=None, usage=None, split=None, validate=True):
    """Read `path` (a dataset folder or a CSV file) into LabeledImages.

    layout: one of LAYOUTS, or None to detect it. usage: fer2013 `Usage` values to keep (all by
    default). split: keep only that split (e.g. "train"). validate: decode every image once and
    skip (count and list) the unreadable ones.
    """
    path = pathlib.Path(path).expanduser()
    if not path.exists():
        raise GiMeFiveError(f"{path} does not exist; pass a dataset folder or a labels CSV")
    layout = layout or detect_layout(path)
    check_choice("layout", layout, LAYOUTS)
    if usage is not None and layout != "fer2013":
        raise GiMeFiveError("usage selects rows of fer2013.csv; this dataset's layout is " + layout)
    reader = {"csv": _read_csv_layout, "folders": _read_folders, "rafdb": _read_rafdb,
              "fer2013": _read_fer2013}[layout]
    table = reader(path, usage) if layout == "fer2013" else reader(path)
    if split is not None:
        table = table.select_split(split)
    if validate and table.pixels is None and len(table):
        table = _drop_unreadable(table)
    if not len(table):
        raise GiMeFiveError(f"no labeled images of the six emotions found in {path} "
                            f"(layout {layout}; dropped: {dict(table.dropped) or 'none'})")
    return table


def detect_layout(path):
    """Guess the layout of `path` from its files; GiMeFiveError when nothing fits."""
    path = pathlib.Path(path)
    if path.is_file():
        if path.suffix.lower() != ".csv":
            raise GiMeFiveError(f"{path} is neither a dataset folder nor a CSV file")
        header = _first_row(path)
        if {"emotion", "pixels"} <= {h.strip().lower() for h in header}:
            return "fer2013"
        return "csv"
    names = {p.name.lower() for p in path.iterdir()}
    if {"train_labels.csv", "test_labels.csv"} & names and _numbered_class_dirs(path):
        return "rafdb"
    if "fer2013.csv" in names:
        return "fer2013"
    if any(n.endswith(".csv") for n in names):
        return "csv"
    if _class_dirs(path) or any(_class_dirs(path / s) for s in _split_dirs(path)):
        return "folders"
    raise GiMeFiveError(
        f"cannot tell the layout of {path}: expected class folders (happy/, sad/, ...), a labels "
        f"CSV, RAF-DB's train/1..7 folders or fer2013.csv; pass --layout one of {', '.join(LAYOUTS)}")


# ----------------------------------------------------------------------------- csv layout

def _read_csv_layout(path):
    csv_files = [path] if path.is_file() else sorted(
        p for p in path.glob("*.csv") if p.is_file())
    if not csv_files:
        raise GiMeFiveError(f"no CSV file in {path}")
    rows, dropped = [], collections.Counter()
    for csv_file in csv_files:
        split = _split_of(csv_file.stem)
        for number, name, raw_label in _label_rows(csv_file):
            label = _parse_label(raw_label, f"{csv_file}:{number}")
            if label is None:
                dropped[split, canonical_name(raw_label) or str(raw_label)] += 1
                continue
            rows.append((_resolve(csv_file, name, split), label, split))
    missing = [source for source, _, _ in rows if not os.path.isfile(source)]
    if missing:
        shown = ", ".join(missing[:3])
        raise GiMeFiveError(f"{len(missing)} file(s) named in {', '.join(map(str, csv_files))} do "
                            f"not exist, e.g. {shown}")
    root = path if path.is_dir() else path.parent
    return LabeledImages(_frame(rows), "csv", str(root), dropped_by_split=dict(dropped))


def _label_rows(csv_file):
    """[(line number, file, label)]. The first row is a header only when it cannot be data: its
    label is no label *and* its first cell names no image file (so `img.jpg,hapy` is a typo
    reported with its line, never swallowed as a header). A row without two cells, or a file
    that is not UTF-8, is an error naming file:line."""
    try:
        with open(csv_file, newline="", encoding="utf-8-sig") as handle:
            lines = list(enumerate(csv.reader(handle), start=1))
    except UnicodeDecodeError as error:
        raise _not_utf8(csv_file, error) from None
    except csv.Error as error:
        raise GiMeFiveError(f"{csv_file}: not a readable CSV ({error})") from None
    rows = [(number, row) for number, row in lines if row and any(cell.strip() for cell in row)]
    columns = 2
    if rows and len(rows[0][1]) >= 2 and not _looks_like_label(rows[0][1][1]) and \
            not rows[0][1][0].strip().lower().endswith(tuple(IMAGE_EXTENSIONS)):
        columns = len(rows[0][1])  # a header (file,label[,source...]) says how many columns
        rows = rows[1:]
    for number, row in rows:
        if len(row) != columns:
            shown = ",".join(row)[:80]
            hint = "; the file looks ';'-separated: use commas" if len(row) == 1 and ";" in \
                row[0] else ""
            raise GiMeFiveError(f"{csv_file}:{number}: expected {columns} columns (file,label"
                                f"{',...' if columns > 2 else ''}), got {len(row)}: "
                                f"{shown!r}{hint}")
    return [(number, row[0].strip(), row[1].strip()) for number, row in rows]


def _looks_like_label(text):
    text = text.strip()
    return text.isdigit() or canonical_name(text) is not None


def _parse_label(raw, source):
    try:
        return label_id(raw)
    except GiMeFiveError as error:
        raise GiMeFiveError(f"{source}: {error}") from None


def _resolve(csv_file, name, split):
    """Where an image named in a CSV lives: beside it, or in its split's folder."""
    direct = csv_file.parent / name
    if direct.is_file() or not split:
        return str(direct)
    in_split = csv_file.parent / split / name
    return str(in_split if in_split.is_file() else direct)


def _split_of(stem):
    head = re.split(r"[_\-. ]", stem.lower(), maxsplit=1)[0]
    return head if head in SPLIT_NAMES else ""


# ------------------------------------------------------------------------- folder layouts

def _read_folders(path):
    splits = _split_dirs(path)
    roots = [(path / s, s.lower()) for s in splits] if splits else [(path, "")]
    rows, dropped = [], collections.Counter()
    for root, split in roots:
        classes = _class_dirs(root)
        if not classes:
            raise GiMeFiveError(f"{root} has no class folders (happy/, sad/, 0/, ...)")
        for class_dir, label in classes:
            images = _images_in(class_dir)
            if label is None:
                dropped[split, canonical_name(class_dir.name) or class_dir.name] += len(images)
                continue
            rows += [(str(image), label, split) for image in images]
    return LabeledImages(_frame(rows), "folders", str(path), dropped_by_split=dict(dropped))


def _class_dirs(path):
    """(folder, label or None for a dropped class) for each class-named sub-folder."""
    found = []
    if not path.is_dir():
        return found
    for child in sorted(p for p in path.iterdir() if p.is_dir()):
        name = child.name.strip()
        if name.isdigit() and int(name) < len(EMOTIONS):
            found.append((child, int(name)))
        elif canonical_name(name) is not None:
            found.append((child, label_id(name)))
    return found


def _split_dirs(path):
    return sorted(p.name for p in path.iterdir() if p.is_dir() and p.name.lower() in SPLIT_NAMES)


def _numbered_class_dirs(path):
    return any((path / s / str(code)).is_dir() for s in ("train", "test") for code in RAFDB_CODES)


def _images_in(folder):
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS
                  and p.is_file())


def _read_rafdb(path):
    """RAF-DB: labels from train_labels.csv/test_labels.csv in RAF codes, images in split/code/."""
    rows, dropped = [], collections.Counter()
    for split in ("train", "test"):
        labels_csv = path / f"{split}_labels.csv"
        if not labels_csv.is_file():
            continue
        frame = pd.read_csv(labels_csv)
        if not {"image", "label"} <= set(frame.columns):
            raise GiMeFiveError(f"{labels_csv} must have columns image,label")
        for image, code in zip(frame["image"], frame["label"]):
            name = RAFDB_CODES.get(int(code))
            if name is None:
                raise GiMeFiveError(f"{labels_csv}: RAF-DB code {code} is not one of 1..7")
            if name not in EMOTIONS:
                dropped[split, name] += 1
                continue
            folder = path / split / str(code)
            source = folder / image if (folder / image).is_file() else path / split / image
            rows.append((str(source), EMOTIONS.index(name), split))
    missing = [source for source, _, _ in rows if not os.path.isfile(source)]
    if missing:
        raise GiMeFiveError(f"{len(missing)} RAF-DB image(s) listed but not found, e.g. "
                            f"{', '.join(missing[:3])}")
    return LabeledImages(_frame(rows), "rafdb", str(path), dropped_by_split=dict(dropped))


def _read_fer2013(path, usage=None):
    """fer2013.csv: 48x48 grayscale pixel strings kept in memory; FER codes mapped to ours."""
    csv_file = path if path.is_file() else path / "fer2013.csv"
    try:
        frame = pd.read_csv(csv_file, dtype={"pixels": str, "emotion": str})
    except UnicodeDecodeError as error:
        raise _not_utf8(csv_file, error) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise GiMeFiveError(f"{csv_file}: not a readable CSV "
                            f"({first_line(error)})") from None
    frame.columns = [c.strip() for c in frame.columns]
    if not {"emotion", "pixels"} <= set(frame.columns):
        raise GiMeFiveError(f"{csv_file} must have columns emotion,pixels[,Usage]")
    if usage is not None:
        usages = [usage] if isinstance(usage, str) else list(usage)
        unknown = sorted(set(usages) - set(FER2013_USAGES))
        if unknown:
            raise GiMeFiveError(f"usage {', '.join(unknown)} is not one of "
                                f"{', '.join(FER2013_USAGES)}")
        if "Usage" not in frame.columns:
            raise GiMeFiveError(f"{csv_file} has no Usage column to select {usages} from")
        frame = frame[frame["Usage"].isin(usages)]
    dropped, skipped, rows, images = collections.Counter(), [], [], []
    for row, (code, pixels, usage_value) in enumerate(zip(
            frame["emotion"], frame["pixels"],
            frame["Usage"] if "Usage" in frame.columns else [""] * len(frame))):
        source = f"{csv_file}#{frame.index[row]}"
        try:
            name = FER2013_CODES.get(int(str(code).strip()))
        except ValueError:
            name = None
        if name is None:  # like an unreadable image: skipped, counted and listed
            skipped.append((source, f"emotion code {code!r} is not one of 0..6"))
            continue
        if name not in EMOTIONS:
            dropped[str(usage_value), name] += 1
            continue
        try:
            values = np.array(str(pixels).split(), dtype=np.float64) \
                if isinstance(pixels, str) else np.array([])
        except ValueError:
            skipped.append((source, "pixels are not numbers"))
            continue
        side = int(round(np.sqrt(values.size)))
        if values.size == 0 or side * side != values.size or values.max() > 255 or values.min() < 0:
            skipped.append((source, f"pixels are not a square 8-bit image ({values.size} values)"))
            continue
        images.append(values.astype(np.uint8).reshape(side, side, 1))
        rows.append((source, EMOTIONS.index(name), str(usage_value)))
    if len({image.shape for image in images}) > 1:
        raise GiMeFiveError(f"{csv_file}: images of different sizes in one file")
    pixels = np.stack(images) if images else np.zeros((0, 48, 48, 1), np.uint8)
    return LabeledImages(_frame(rows), "fer2013", str(csv_file), pixels=pixels,
                         dropped_by_split=dict(dropped), skipped=skipped)


# ------------------------------------------------------------------------------- helpers

def _frame(rows):
    return pd.DataFrame(rows, columns=["source", "label", "split"]).astype(
        {"source": str, "label": np.int64, "split": str})


def _first_row(csv_file):
    try:
        with open(csv_file, newline="", encoding="utf-8-sig") as handle:
            return next(csv.reader(handle), [])
    except UnicodeDecodeError as error:
        raise _not_utf8(csv_file, error) from None


def _not_utf8(csv_file, error):
    line = pathlib.Path(csv_file).read_bytes()[:error.start].count(b"\n") + 1
    return GiMeFiveError(f"{csv_file}:{line}: not UTF-8 text ({error.reason} at byte "
                         f"{error.start}); save the CSV as UTF-8")


def _drop_unreadable(table):
    """Decode every image once with the pipeline's own decoder; skip what fails."""
    from gimefive_tf.data.pipeline import readable_mask

    ok, reasons = readable_mask(table.frame["source"].tolist())
    if ok.all():
        return table
    skipped = list(table.skipped)
    skipped += [(s, r) for s, r, good in zip(table.frame["source"], reasons, ok) if not good]
    return dataclasses.replace(table.subset(ok), skipped=skipped)
