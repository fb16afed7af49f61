"""`python -m gimefive_tf.scores PATH`: per-image classification scores, the paper's Table 3.

Writes `filepath,happiness,surprise,sadness,anger,disgust,fear`, one row per image, softmax
probabilities rounded to 2 decimals (`--digits`), sorted by path. PATH is a folder (walked
recursively) or a labels CSV / fer2013.csv. Images are face crops by default; `--crop face`
treats them as photos (the library's face pipeline: every face gets a row, with `face,x,y,w,h`
columns, and a photo without a face is listed as skipped). Unreadable files are reported and
skipped, never fatal.
"""

import csv
import pathlib

import numpy as np

from gimefive_tf.cli import (
    ArgumentParser, add_face_arguments, add_model_argument, command, positive_int, print_json,
    print_skipped, progress)
from gimefive_tf.choices import LAYOUTS
from gimefive_tf.errors import GiMeFiveError
from gimefive_tf.outputs import atomic_path, claim_file
from gimefive_tf.labels import EMOTIONS

HEADER = ("filepath",) + EMOTIONS
FACE_COLUMNS = ("face", "x", "y", "w", "h")


def find_images(path, layout=None, limit=None):
    """(sources, in-memory pixels or None, skipped): every image under a folder (the first
    `limit` in path order), or a dataset CSV's (a seeded random `limit` of them)."""
    from gimefive_tf.data import read_dataset
    from gimefive_tf.data.pipeline import readable_mask
    from gimefive_tf.pictures import (NAMES, TENSORFLOW_EXTENSIONS, collect, is_glob,
                                      is_picture_name)

    path = pathlib.Path(path)
    if not path.exists() and not is_glob(path):  # a glob is `collect`'s
        raise GiMeFiveError(f"{path} does not exist; pass an image folder or a labels CSV")
    if path.is_file() and path.suffix.lower() == ".csv":
        table = read_dataset(path, layout=layout).sample(limit)
        return table.frame["source"].tolist(), table.pixels, table.skipped

    if path.is_file() and not is_picture_name(path):
        raise GiMeFiveError(f"no images ({NAMES}) found in {path}")
    sources = sorted(str(p) for p in collect([path]))[:limit]
    ok, reasons = readable_mask(sources)
    for index, source in enumerate(sources):  # TIFF: read by Pillow, not by tf.data
        if not is_picture_name(source, TENSORFLOW_EXTENSIONS):
            ok[index], reasons[index] = _readable_by_pillow(source)
    skipped = [(s, r) for s, r, good in zip(sources, reasons, ok) if not good]
    return [s for s, good in zip(sources, ok) if good], None, skipped


def _readable_by_pillow(source):
    from gimefive_tf.pictures import read_picture

    try:
        read_picture(source)
        return True, ""
    except GiMeFiveError as error:
        return False, str(error)


def load_pixels(sources, pixels, image_size):
    """uint8 RGB images (already face crops) for the sources, resized to the model's input:
    decoded in parallel by tf.data, the formats TensorFlow does not read (TIFF) by
    `pictures.read_picture`."""
    import tensorflow as tf

    from gimefive_tf.data.pipeline import decode_image, resize_pixels
    from gimefive_tf.pictures import TENSORFLOW_EXTENSIONS, is_picture_name, read_picture

    if not len(sources):
        return np.zeros((0, image_size, image_size, 3), np.uint8)
    if pixels is not None:
        return np.stack([resize_pixels(p, image_size).numpy() for p in pixels])
    by_tensorflow = [s for s in sources if is_picture_name(s, TENSORFLOW_EXTENSIONS)]
    loaded = {}
    if by_tensorflow:
        dataset = tf.data.Dataset.from_tensor_slices(by_tensorflow).map(
            lambda p: decode_image(tf.io.read_file(p), image_size),
            num_parallel_calls=tf.data.AUTOTUNE).batch(256)
        decoded = np.concatenate([batch for batch in dataset.as_numpy_iterator()])
        loaded = dict(zip(by_tensorflow, decoded))
    return np.stack([loaded[s] if s in loaded else
                     resize_pixels(read_picture(s), image_size).numpy() for s in sources])


def write_scores(path, sources, probabilities, boxes=None, digits=2):
    """The Table 3 CSV, sorted by path, probabilities rounded to `digits` decimals; with
    `boxes` ((face, [x, y, w, h]) per row) a face index and box follow the path."""
    order = np.argsort(np.asarray(sources, dtype=object).astype(str), kind="stable")
    with atomic_path(path) as temporary, open(temporary, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER[:1] + (FACE_COLUMNS if boxes is not None else ()) + HEADER[1:])
        for index in order:
            where = [boxes[index][0], *boxes[index][1]] if boxes is not None else []
            writer.writerow([sources[index]] + where +
                            [f"{p:.{digits}f}" for p in probabilities[index]])


def build_parser():
    parser = ArgumentParser(
        prog="gimefive-scores",
        description="Write per-image emotion scores (the paper's Table 3 format) as CSV.")
    parser.add_argument("path", metavar="PATH",
                        help="image folder (recursive), image, quoted glob pattern, or CSV")
    add_model_argument(parser)
    parser.add_argument("--out", default="scores.csv", help="CSV to write (default scores.csv; "
                        "an existing file is never overwritten without --overwrite)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    add_face_arguments(parser, crop_help=None)
    parser.add_argument("--crop", choices=("none", "face", "auto"), default="none",
                        help="none: the images are face crops (default); face: photos, one row "
                             "per face, photos without a face skipped; auto: like face, but "
                             "a photo without a face is scored whole")
    parser.add_argument("--batch-size", type=positive_int, default=64)
    parser.add_argument("--digits", type=positive_int, default=2,
                        help="decimals of each probability (default 2, the paper's table)")
    parser.add_argument("--layout", choices=LAYOUTS, help="layout of a labels CSV (detected)")
    parser.add_argument("--limit", type=positive_int, help="only the first N images of a folder "
                        "(file-name order), a seeded random N of a CSV (default all)")
    parser.add_argument("--json", action="store_true", help="print a summary as JSON")
    return parser


def main(argv=None):
    from gimefive_tf.analyze import NO_FACE, FacePipeline

    args = build_parser().parse_args(argv)
    out = claim_file(args.out, args.overwrite)
    pipeline = FacePipeline(args.model, args.detector, args.framing, args.crop,
                            batch_size=args.batch_size, turned=not args.upright_only)
    sources, pixels, skipped = find_images(args.path, args.layout, args.limit)
    faceless, boxes = [], None
    if args.crop == "none":
        kept = sources
        probabilities = pipeline.classify_all(load_pixels(sources, pixels, pipeline.size),
                                              progress)
    else:
        inputs = zip(sources, pixels if pixels is not None else [None] * len(sources))
        results = pipeline.run(list(inputs), progress=progress)
        faceless = [r.input for r in results if r.reason == NO_FACE]
        skipped += [(r.input, r.reason) for r in results
                    if r.scores is None and r.reason != NO_FACE]
        scored = [r for r in results if r.scores is not None]
        kept = [r.input for r in scored]
        probabilities = np.array([r.probabilities for r in scored]).reshape(-1, len(EMOTIONS))
        boxes = [(r.face if r.face is not None else "", r.box or ["", "", "", ""])
                 for r in scored]
    write_scores(out, kept, probabilities, boxes, args.digits)
    print_skipped(skipped)
    print_skipped((source, "no face found") for source in faceless)
    summary = {"csv": str(out), "images": len(set(kept)), "rows": len(kept),
               "skipped": len(skipped), "without_face": len(faceless)}
    if args.json:
        print_json(summary)
    else:
        faces = f"{len(kept)} faces in " if boxes is not None else ""
        unread = f"; {len(skipped)} skipped (unreadable)" if skipped else ""
        no_face = f"; {len(faceless)} without a face" if faceless else ""
        print(f"{faces}{len(set(kept))} images scored into {out}{unread}{no_face}")
    return 0


entry_point = command(main)


if __name__ == "__main__":
    entry_point()
