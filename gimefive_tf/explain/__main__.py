"""`python -m gimefive_tf.explain <verb>`: heatmaps, feature maps, faithfulness and face regions.

  maps INPUT...         heatmap overlays (one PNG per image) and per-emotion galleries
  activations INPUT...  feature maps of each conv stage as image grids
  metrics DATA          deletion/insertion AUC, average drop, increase in confidence vs random
  regions DATA          heatmap mass on upper/middle/lower face per predicted emotion
INPUT is an image or a folder of images: every face is found and framed by the library's face
pipeline (a picture without a face is used whole: --crop auto; --crop face skips it, --crop none
takes every picture as a face crop); DATA (or --data DATA) is a labeled dataset in any layout.
"""

import argparse
import pathlib

import numpy as np

from gimefive_tf.cli import (
    MODEL_HELP, ArgumentParser, add_data_arguments, add_face_arguments, command, finite_float,
    format_table, non_negative_int, positive_int, print_json, print_skipped, progress)
from gimefive_tf.errors import GiMeFiveError
from gimefive_tf.explain.methods import DEFAULT_METHOD, METHODS
from gimefive_tf.labels import EMOTIONS
from gimefive_tf.outputs import write_text


def build_parser():
    parser = ArgumentParser(prog="gimefive-explain", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.split("\n")[2:]))
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name, help_text, inputs=True):
        sub = verbs.add_parser(name, help=help_text, description=help_text)
        if inputs:
            sub.add_argument("inputs", nargs="+", metavar="INPUT",
                             help="images, folders or quoted glob patterns")
            sub.add_argument("--limit", type=positive_int,
                             help="only the first N images, in file-name order (default all)")
            add_face_arguments(sub, crop_help="auto: every face, a picture without one whole "
                               "(default); face: skip pictures without a face; none: the "
                               "pictures are face crops")
            sub.set_defaults(crop="auto")
        sub.add_argument("--model", metavar="PATH.keras|NAME", help=MODEL_HELP)
        sub.add_argument("--json", action="store_true", help="print JSON for machines")
        return sub

    maps = verb("maps", "heatmap overlays for images")
    maps.add_argument("--method", choices=list(METHODS), default=DEFAULT_METHOD)
    maps.add_argument("--target", help="explain this emotion (default: the predicted one)")
    maps.add_argument("--layer", help="feature map to explain (default: the method's own: "
                                      "stage4_conv for layercam, stage5_conv for gradcam)")
    maps.add_argument("--alpha", type=finite_float(0, 1), default=0.4, help="heatmap opacity (0.4)")
    maps.add_argument("--out", default="explanations", help="folder for PNGs (explanations)")
    maps.add_argument("--overwrite", action="store_true", help="write into a non-empty --out")

    activations = verb("activations", "feature-map grids of each conv stage")
    activations.add_argument("--layer", action="append", help="only these layers (repeatable)")
    activations.add_argument("--out", default="activations", help="folder for PNGs")
    activations.add_argument("--overwrite", action="store_true",
                             help="write into a non-empty --out")

    metrics = verb("metrics", "faithfulness of heatmaps on a labeled dataset", inputs=False)
    add_data_arguments(metrics, limit=200)
    metrics.add_argument("--methods", default="gradcam,gradcam++,layercam",
                         help="comma-separated methods (gradcam,gradcam++,layercam); 'default' "
                              f"is the default explanation ({DEFAULT_METHOD})")
    metrics.add_argument("--layer", help="feature map the CAM methods explain (default: each "
                                         "method's own)")
    metrics.add_argument("--steps", type=positive_int, default=16, help="deletion/insertion steps (16)")
    metrics.add_argument("--sanity", action="store_true",
                         help="also run the model-randomization check on the first method")
    metrics.add_argument("--seed", type=non_negative_int, default=0)

    regions = verb("regions", "heatmap mass per face region and predicted emotion", inputs=False)
    add_data_arguments(regions, limit=1000)
    regions.add_argument("--method", choices=list(METHODS), default=DEFAULT_METHOD)
    regions.add_argument("--out", default="regions", help="folder for regions.csv and the plot")
    regions.add_argument("--overwrite", action="store_true", help="write into a non-empty --out")
    return parser


def _new_folder(args):
    from gimefive_tf.outputs import claim_folder

    return claim_folder(args.out, args.overwrite)


def face_results(args, model, explain=None):
    """FaceResults (crop, and heatmap with `explain`) of every face in the INPUTs."""
    from gimefive_tf.analyze import FacePipeline, collect_inputs

    pipeline = FacePipeline(model, args.detector, args.framing, args.crop, explain=explain,
                            layer=getattr(args, "layer", None) if explain else None,
                            target=getattr(args, "target", None),
                            turned=not args.upright_only)
    results = pipeline.run(collect_inputs(args.inputs, args.limit), progress=progress)
    print_skipped((result.input, result.reason) for result in results if result.scores is None)
    results = [result for result in results if result.scores is not None]
    if not results:
        raise GiMeFiveError("no face in any input (pass --crop auto or none to use whole "
                            "pictures)" if args.crop == "face" else
                            "none of the inputs is a readable image")
    return results


def face_name(result):
    """A file stem for one face: the input's stem, and the face number when there are faces."""
    stem = pathlib.Path(result.input).stem
    return stem if result.face is None else f"{stem}_face{result.face}"


def load_data(args, size, seed=0):
    from gimefive_tf.data import load_arrays, read_dataset

    return load_arrays(read_dataset(args.data, layout=args.layout).sample(args.limit, seed), size)


def maps(args, model):
    from gimefive_tf.explain.visualize import gallery, save_overlay

    results = face_results(args, model, explain=args.method)
    out = _new_folder(args)
    rows = []
    for result in results:
        file = out / f"{face_name(result)}_{args.method}.png"
        save_overlay(file, result.crop, result.heatmap, result.probabilities,
                     title=pathlib.Path(result.input).name, alpha=args.alpha, method=args.method)
        rows.append({"input": result.input, "face": result.face, "box": result.box,
                     "emotion": result.emotion, "target": result.target, "png": str(file)})
    faces = np.stack([r.crop for r in results])
    heatmaps = np.stack([r.heatmap for r in results])
    predicted = np.array([EMOTIONS.index(r.emotion) for r in results])
    for index, emotion in enumerate(EMOTIONS):
        members = np.flatnonzero(predicted == index)[:8]
        if len(members):
            gallery(faces[members], heatmaps[members], f"{args.method}: predicted {emotion}",
                    out / f"gallery_{emotion}.png")
    if args.json:
        print_json(rows)
    else:
        print(format_table([{**r, "face": "-" if r["face"] is None else r["face"]} for r in rows],
                           [("input", "input"), ("face", "face"), ("emotion", "predicted"),
                            ("target", "explained"), ("png", "picture")]))


def activations(args, model):
    from gimefive_tf.explain.base import feature_maps
    from gimefive_tf.explain.visualize import activation_grid

    results = face_results(args, model)
    layers_maps = feature_maps(model, np.stack([r.crop for r in results]), args.layer)
    layers, outputs = list(layers_maps), list(layers_maps.values())
    out = _new_folder(args)
    files = []
    for i, result in enumerate(results):
        for layer, maps in zip(layers, outputs):
            file = out / f"{face_name(result)}_{layer}.png"
            activation_grid(maps[i], f"{pathlib.Path(result.input).name}: {layer}", file)
            files.append(str(file))
    if args.json:
        print_json({"layers": layers, "files": files})
    else:
        print(f"{len(files)} feature-map grids in {out}")


def metrics(args, model):
    from gimefive_tf.explain.metrics import faithfulness, randomization_check

    methods = [DEFAULT_METHOD if m.strip() == "default" else m.strip()
               for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise GiMeFiveError(f"unknown method(s) {', '.join(unknown) or '(none)'}; choose from "
                            f"{', '.join(METHODS)}")
    images, _ = load_data(args, model.input_shape[1], args.seed)
    results = faithfulness(model, images, methods, steps=args.steps, seed=args.seed,
                           layer=args.layer)
    if args.sanity:
        results["sanity"] = randomization_check(model, images[:64], methods[0], seed=args.seed)
    if args.json:
        print_json(results)
        return
    rows = [{"method": name, **{k: f"{v:.4f}" if "auc" in k else f"{v:.2f}"
                                for k, v in values.items() if k != "images"}}
            for name, values in results.items() if name != "sanity"]
    print(format_table(rows, [("method", "method"), ("deletion_auc", "deletion AUC (low)"),
                              ("insertion_auc", "insertion AUC (high)"),
                              ("average_drop", "avg drop %"),
                              ("increase_in_confidence", "increase %")]))
    if "sanity" in results:
        sanity = results["sanity"]
        print(f"randomization check ({sanity['method']}): mean rank correlation "
              f"{sanity['mean_rank_correlation']:.3f} -> {'passed' if sanity['passed'] else 'FAILED'}")


def regions(args, model):
    import pandas as pd

    from gimefive_tf.explain.methods import make_explainer
    from gimefive_tf.explain.regions import plot_regions, summarize_regions
    from gimefive_tf.inference import Predictor

    images, _ = load_data(args, model.input_shape[1])
    predictions = Predictor(model)(images, progress=progress).argmax(1)
    explainer = make_explainer(model, args.method)
    maps = np.concatenate([explainer(images[i:i + 64], predictions[i:i + 64])[0]
                           for i in progress(range(0, len(images), 64), "explaining")])
    rows = summarize_regions(maps, predictions)
    out = _new_folder(args)
    write_text(out / "regions.csv", pd.DataFrame(rows).to_csv(index=False))
    plot_regions(rows, out / "regions.png", args.method)
    if args.json:
        print_json(rows)
    else:
        print(format_table([{k: f"{v:.3f}" if isinstance(v, float) else v for k, v in r.items()}
                            for r in rows], [(k, k) for k in rows[0]]))
        print(f"written {out / 'regions.csv'} and {out / 'regions.png'}")


def main(argv=None):
    from gimefive_tf.loading import load_model

    args = build_parser().parse_args(argv)
    model = load_model(args.model)
    {"maps": maps, "activations": activations, "metrics": metrics, "regions": regions}[
        args.verb](args, model)
    return 0


entry_point = command(main)


if __name__ == "__main__":
    entry_point()
