"""`python -m gimefive_tf.calibrate DATA`: measure how each detector frames the training faces.

Training faces are shown as a camera would see them (gimefive_tf.scenes: context, size,
place, lighting), each detector is run on them alone (BlazeFace's boxes without MTCNN's second
opinion, whose boxes and five landmarks are its own), and the map from its box to the face's true
aligned frame (scale and offset, medians over all found faces) is fitted, with the mean
landmark template where the detector gives landmarks, and how the training faces are lit
(median pixel mean and spread, matched on every crop). Then the framings are scored by how
often the model's answer on the crop equals its answer on the aligned face, on the same faces
turned by up to 15 degrees; the better one becomes that detector's default. The result is
written beside the model as `<model>.framing.json`, where the face pipeline finds it.
"""


import numpy as np

from gimefive_tf.cli import (
    ArgumentParser, add_data_arguments, add_model_argument, command, finite_float, format_table,
    non_negative_int, print_json, progress, whole_number)
from gimefive_tf.errors import GiMeFiveError
from gimefive_tf.outputs import claim_file
from gimefive_tf.faces import DETECTORS, FRAMINGS

DEFAULT_FACES = 300


def calibration_scenes(faces, seed=0, max_angle=0.0):
    """Scenes of the faces at sizes 90-240 px in 640x480 pictures, reproducible from `seed`."""
    from gimefive_tf import scenes

    rng = np.random.default_rng(seed)
    return [scenes.random_scene(face, rng, max_angle=max_angle) for face in faces]


def fit_framing(pairs, faces=None):
    """Framing from (Box, Scene) pairs: medians of side ratio and centre offsets, and the
    median landmark positions in the aligned frame (fractions of its side); with the aligned
    `faces`, also their median pixel mean and standard deviation (how they are lit)."""
    from gimefive_tf.faces import Framing

    if not pairs:
        raise GiMeFiveError("the detector found none of the calibration faces")
    sides = np.array([box.side for box, _ in pairs])
    scale = np.median([scene.side / side for (_, scene), side in zip(pairs, sides)])
    dx = np.median([(scene.cx - box.center[0]) / box.side for box, scene in pairs])
    dy = np.median([(scene.cy - box.center[1]) / box.side for box, scene in pairs])
    marked = [(box, scene) for box, scene in pairs if box.landmarks is not None]
    template = None
    if marked:
        points = np.array([[((x - scene.square[0]) / scene.side, (y - scene.square[1]) / scene.side)
                            for x, y in box.landmarks] for box, scene in marked])
        template = tuple(map(tuple, np.median(points, axis=0).round(4).tolist()))
    mean = std = None
    if faces is not None:
        pixels = np.asarray(faces, np.float32).reshape(len(faces), -1)
        mean = float(round(np.median(pixels.mean(1)), 2))
        std = float(round(np.median(pixels.std(1)), 2))
    return Framing(float(round(scale, 4)), float(round(dx, 4)), float(round(dy, 4)), template,
                   mean, std)


def calibrate_detector(detector, faces, reference, predictor, seed=0, bar=None):
    """{framing, default, found, agreement{framing: share}} for one detector; `reference`: the
    model's class for each aligned face, which a well-framed crop should get too."""
    from gimefive_tf.faces import detect_faces, frame_face
    from gimefive_tf.scenes import matching_face

    def own_box(scene):  # the detector's own box on the scene's face (no second opinion)
        return matching_face(detect_faces(scene.picture, detector, turned=False,
                                          second_opinions=False), scene)

    upright = calibration_scenes(faces, seed)
    pairs = []
    for scene in upright:
        box = own_box(scene)
        if box is not None:
            pairs.append((box, scene))
        if bar is not None:
            bar.update(1)
    framing = fit_framing(pairs, faces)
    turned = calibration_scenes(faces, seed + 1, max_angle=15.0)
    crops = {how: [] for how in FRAMINGS}
    kept = []
    for index, scene in enumerate(turned):
        box = own_box(scene)
        if bar is not None:
            bar.update(1)
        if box is None:
            continue
        kept.append(index)
        for how in FRAMINGS:
            crops[how].append(frame_face(scene.picture, box, framing, how, faces.shape[1])[0])
    agreement = {}
    for how in FRAMINGS:
        if how != "box" and framing.template is None:
            continue
        answers = predictor(np.stack(crops[how])).argmax(1) if kept else np.zeros(0)
        agreement[how] = round(float((answers == reference[kept]).mean()), 4) if kept else 0.0
    return {"framing": framing, "default": max(agreement, key=agreement.get),
            "found": round(len(pairs) / len(faces), 4), "agreement": agreement}


def build_parser():
    parser = ArgumentParser(prog="gimefive-calibrate",
                                     description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    add_data_arguments(parser, "the model's training faces (aligned crops; any layout)",
                       limit=False)
    add_model_argument(parser)
    parser.add_argument("--detectors", default=",".join(DETECTORS),
                        help=f"comma-separated detectors ({','.join(DETECTORS)})")
    parser.add_argument("--faces", type=whole_number(10), default=DEFAULT_FACES,
                        help=f"faces to calibrate on ({DEFAULT_FACES})")
    parser.add_argument("--exclude-val", type=finite_float(0, 1, high_open=True), default=0.1,
                        help="leave out the stratified validation fraction the model was "
                             "trained without (0.1, seed --seed; 0 uses every face)")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--out", help="calibration JSON (default: <model>.framing.json beside "
                                      "the model; an existing file is never overwritten)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.add_argument("--json", action="store_true", help="print the calibration as JSON")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)  # before the imports that load TensorFlow
    from gimefive_tf.data import load_arrays, read_dataset, stratified_split
    from gimefive_tf.faces import check_detector, framing_path, write_calibration
    from gimefive_tf.inference import Predictor
    from gimefive_tf.loading import PRETRAINED_MODEL, load_model, model_file

    detectors = [check_detector(d.strip()) for d in args.detectors.split(",") if d.strip()]
    if not detectors:
        raise GiMeFiveError("pass at least one detector")
    out = claim_file(args.out or framing_path(model_file(args.model)), args.overwrite)
    model = load_model(args.model)
    table = read_dataset(args.data, layout=args.layout)
    if args.exclude_val:
        table, _ = stratified_split(table, args.exclude_val, seed=args.seed)
    chosen = np.sort(np.random.default_rng(args.seed).permutation(len(table))[:args.faces])
    faces, _ = load_arrays(table.subset(chosen), model.input_shape[1])
    predictor = Predictor(model)
    bar = progress(None, "calibrating", total=2 * len(faces) * len(detectors))
    reference = predictor(faces).argmax(1)
    calibration = {d: calibrate_detector(d, faces, reference, predictor, args.seed, bar)
                   for d in detectors}
    bar.close()
    write_calibration(out, calibration, {"data": str(args.data), "faces": int(len(faces)),
                                         "seed": args.seed, "model": str(args.model or
                                                                         PRETRAINED_MODEL.name)})
    rows = [{"detector": name, "found": f"{entry['found']:.3f}",
             "scale": entry["framing"].scale, "dx": entry["framing"].dx,
             "dy": entry["framing"].dy, "default": entry["default"],
             **{f"agree_{how}": entry["agreement"].get(how, "-") for how in FRAMINGS}}
            for name, entry in calibration.items()]
    if args.json:
        print_json({"calibration": str(out), "detectors": rows})
    else:
        print(format_table(rows, [(k, k) for k in rows[0]]))
        print(f"written {out}")
    return 0


entry_point = command(main)


if __name__ == "__main__":
    entry_point()
