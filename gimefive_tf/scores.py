"""`python -m gimefive_tf.scores PATH`: per-image classification scores, the paper's Table 3.

Writes `filepath,happiness,surprise,sadness,anger,disgust,fear`, one row per image, softmax
probabilities rounded to 2 decimals, sorted by path. PATH is a folder (walked recursively) or a
labels CSV / fer2013.csv. Unreadable files are reported and skipped, never fatal.
"""

import argparse
import csv
import pathlib
import sys

import numpy as np

from gimefive_tf.cli import command, print_json, progress
from gimefive_tf.data.readers import IMAGE_EXTENSIONS
from gimefive_tf.errors import GiMeFiveError
from gimefive_tf.labels import EMOTIONS

HEADER = ("filepath",) + EMOTIONS


def find_images(path):
    """(sources, in-memory pixels or None, skipped): every image under a folder, or a dataset CSV."""
    from gimefive_tf.data import read_dataset
    from gimefive_tf.data.pipeline import readable_mask

    path = pathlib.Path(path)
    if not path.exists():
        raise GiMeFiveError(f"{path} does not exist; pass an image folder or a labels CSV")
    if path.is_file() and path.suffix.lower() == ".csv":
        table = read_dataset(path)
        return table.frame["source"].tolist(), table.pixels, table.skipped
    if path.is_file():
        candidates = [path] if path.suffix.lower() in IMAGE_EXTENSIONS else []
    else:
        candidates = [p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS
                      and p.is_file()]
    if not candidates:
        raise GiMeFiveError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found in {path}")
    sources = sorted(str(p) for p in candidates)
    ok, reasons = readable_mask(sources)
    skipped = [(s, r) for s, r, good in zip(sources, reasons, ok) if not good]
    return [s for s, good in zip(sources, ok) if good], None, skipped


def load_pixels(sources, pixels, image_size, faces=False, detector="haar"):
    """uint8 RGB images for the sources, face-cropped first when `faces`; (images, kept, faceless)."""
    import tensorflow as tf

    from gimefive_tf.data.pipeline import decode_image, resize_pixels

    if not len(sources):
        return np.zeros((0, image_size, image_size, 3), np.uint8), [], []
    if pixels is not None:
        images = np.stack([resize_pixels(p, image_size).numpy() for p in pixels])
        return images, list(sources), []
    if not faces:
        dataset = tf.data.Dataset.from_tensor_slices(sources).map(
            lambda p: decode_image(tf.io.read_file(p), image_size),
            num_parallel_calls=tf.data.AUTOTUNE).batch(256)
        images = [batch for batch in dataset.as_numpy_iterator()]
        return np.concatenate(images), list(sources), []
    from gimefive_tf.faces import largest_face

    crops, kept, faceless = [], [], []
    for source in progress(sources, "finding faces"):
        image = tf.io.decode_image(tf.io.read_file(source), channels=3,
                                   expand_animations=False).numpy()
        crop, _ = largest_face(image, detector, image_size)
        if crop is None:
            faceless.append(source)
        else:
            crops.append(crop)
            kept.append(source)
    if not crops:
        return np.zeros((0, image_size, image_size, 3), np.uint8), [], faceless
    return np.stack(crops), kept, faceless


def write_scores(path, sources, probabilities):
    """The Table 3 CSV, sorted by path, probabilities rounded to 2 decimals."""
    order = np.argsort(np.asarray(sources, dtype=object).astype(str), kind="stable")
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for index in order:
            writer.writerow([sources[index]] + [f"{p:.2f}" for p in probabilities[index]])


def build_parser():
    parser = argparse.ArgumentParser(
        prog="gimefive-scores",
        description="Write per-image emotion scores (the paper's Table 3 format) as CSV.")
    parser.add_argument("path", metavar="PATH", help="image folder (recursive), image, or CSV")
    parser.add_argument("--model", help="a .keras model (default: the shipped model)")
    parser.add_argument("--out", default="scores.csv", help="CSV to write (default scores.csv; "
                        "an existing file is never overwritten)")
    parser.add_argument("--faces", action="store_true",
                        help="full photos: crop the largest face first (see gimefive_tf.faces)")
    parser.add_argument("--detector", default="haar", help="face detector for --faces")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--json", action="store_true", help="print a summary as JSON")
    return parser


def main(argv=None):
    from gimefive_tf.inference import Predictor
    from gimefive_tf.loading import load_model

    args = build_parser().parse_args(argv)
    out = pathlib.Path(args.out)
    if out.exists():
        raise GiMeFiveError(f"{out} already exists; nothing was overwritten: pass another --out")
    model = load_model(args.model)
    sources, pixels, skipped = find_images(args.path)
    images, kept, faceless = load_pixels(sources, pixels, model.input_shape[1], args.faces,
                                         args.detector)
    probabilities = Predictor(model, args.batch_size)(images, progress=progress)
    write_scores(out, kept, probabilities)
    for source, reason in skipped:
        print(f"skipped {source}: {reason}", file=sys.stderr)
    for source in faceless:
        print(f"skipped {source}: no face found", file=sys.stderr)
    summary = {"csv": str(out), "images": len(kept), "skipped": len(skipped),
               "without_face": len(faceless)}
    if args.json:
        print_json(summary)
    else:
        print(f"{len(kept)} images scored into {out}"
              + (f"; {len(skipped) + len(faceless)} skipped" if skipped or faceless else ""))
    return 0


entry_point = command(main)


if __name__ == "__main__":
    entry_point()
