"""`python -m gimefive_tf.predict [IMAGE|FOLDER ...]`: the six emotion scores of each face.

With no input it classifies a real face that ships with scikit-image (the astronaut photo), so
a fresh install shows the whole path: photo -> face detection and crop -> model -> scores.
"""

import argparse
import pathlib

import numpy as np

from gimefive_tf.cli import command, format_table, print_json, progress
from gimefive_tf.errors import GiMeFiveError
from gimefive_tf.labels import EMOTIONS

CROPS = ("auto", "face", "none")


def demo_image():
    """(name, RGB uint8) of scikit-image's astronaut photo, read from the installed package."""
    try:
        from skimage import data
    except ImportError:
        raise GiMeFiveError("the built-in demo photo needs scikit-image; pass an image instead") \
            from None
    return "skimage:astronaut", data.astronaut()


def read_rgb(path):
    """An image file as RGB uint8 (any format OpenCV or TensorFlow reads)."""
    import tensorflow as tf

    try:
        return tf.io.decode_image(tf.io.read_file(str(path)), channels=3,
                                  expand_animations=False).numpy()
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError):
        raise GiMeFiveError(f"{path} is not a readable image") from None


def collect_inputs(paths):
    from gimefive_tf.data.readers import IMAGE_EXTENSIONS

    if not paths:
        return [demo_image()]
    found = []
    for path in map(pathlib.Path, paths):
        if path.is_dir():
            images = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
            if not images:
                raise GiMeFiveError(f"no images in {path}")
            found += [(str(p), None) for p in images]
        elif path.is_file():
            found.append((str(path), None))
        else:
            raise GiMeFiveError(f"{path} does not exist; pass image files or folders")
    return found


def prepare(image, size, crop, detector):
    """(model-ready face, box or None, how it was cropped)."""
    from gimefive_tf.data.pipeline import resize_pixels
    from gimefive_tf.faces import largest_face

    if crop != "none":
        face, box = largest_face(image, detector, size)
        if face is not None:
            return face, box, "face"
        if crop == "face":
            return None, None, "no face found"
    return resize_pixels(image, size).numpy(), None, "whole image"


def plot_prediction(face, probabilities, title, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(8, 3.2),
                                         gridspec_kw={"width_ratios": [1, 1.6]})
    left.imshow(face)
    left.axis("off")
    left.set_title(title, fontsize=9)
    order = np.arange(len(EMOTIONS))[::-1]
    colors = ["tab:orange" if i == probabilities.argmax() else "tab:blue" for i in order]
    right.barh([EMOTIONS[i] for i in order], probabilities[order], color=colors)
    right.set_xlim(0, 1)
    right.set_xlabel("probability")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="gimefive-predict",
        description="Classify the emotion of faces in images (default: a demo photo).")
    parser.add_argument("inputs", nargs="*", metavar="IMAGE",
                        help="image files or folders (default: scikit-image's astronaut photo)")
    parser.add_argument("--model", help="a .keras model (default: the shipped model)")
    parser.add_argument("--crop", choices=CROPS, default="auto",
                        help="auto: the largest face, else the whole image; face: skip images "
                             "without a face; none: the whole image (already-cropped faces)")
    parser.add_argument("--detector", default="haar", help="face detector (haar)")
    parser.add_argument("--plot", metavar="PNG", help="save face and scores as a picture "
                        "(one input only)")
    parser.add_argument("--json", action="store_true", help="print JSON for machines")
    return parser


def main(argv=None):
    from gimefive_tf.inference import Predictor
    from gimefive_tf.loading import load_model

    args = build_parser().parse_args(argv)
    if args.plot and len(args.inputs) > 1:
        raise GiMeFiveError("--plot draws one image; pass a single input")
    inputs = collect_inputs(args.inputs)
    if args.plot and len(inputs) != 1:
        raise GiMeFiveError("--plot draws one image; pass a single input")
    if args.plot and pathlib.Path(args.plot).exists():
        raise GiMeFiveError(f"{args.plot} already exists; nothing was overwritten")
    model = load_model(args.model)
    size = model.input_shape[1]
    rows, faces = [], []
    for name, image in progress(inputs, "reading"):
        image = read_rgb(name) if image is None else image
        face, box, how = prepare(image, size, args.crop, args.detector)
        rows.append({"input": name, "crop": how,
                     "box": None if box is None else [box.x, box.y, box.w, box.h]})
        faces.append(face)
    kept = [i for i, face in enumerate(faces) if face is not None]
    probabilities = Predictor(model, batch_size=min(64, max(1, len(kept))))(
        np.stack([faces[i] for i in kept])) if kept else np.zeros((0, len(EMOTIONS)))
    for index, probs in zip(kept, probabilities):
        rows[index].update({"emotion": EMOTIONS[int(probs.argmax())],
                            "scores": {e: round(float(p), 4) for e, p in zip(EMOTIONS, probs)}})
    if args.plot and kept:
        plot_prediction(faces[0], probabilities[0], f"{rows[0]['input']}: {rows[0]['emotion']}",
                        args.plot)
    if args.json:
        print_json(rows)
        return 0
    table = [{"input": r["input"], "emotion": r.get("emotion", "-"), "crop": r["crop"],
              **{e: f"{r['scores'][e]:.2f}" if "scores" in r else "-" for e in EMOTIONS}}
             for r in rows]
    columns = [("input", "input"), ("emotion", "emotion")] + [(e, e) for e in EMOTIONS] + [
        ("crop", "crop")]
    print(format_table(table, columns))
    return 0


entry_point = command(main)


if __name__ == "__main__":
    entry_point()
