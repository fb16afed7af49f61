"""Which explanation is most faithful? Deletion/insertion AUC (blur, 16 steps), average drop and
increase in confidence of every CAM method on each candidate feature map, beside random maps on
the same grid, for a model on validation faces it was not trained on. JSON on stdout (and --out).

    python benchmarks/explain_faithfulness.py [--model rafdb] [--data ../shared/datasets/RAF-DB]

The faces: the seeded 10% validation split (`stratified_split(table, 0.1, seed=0)`, the split the
shipped models were chosen on), then a seeded random --limit of them.
"""

import argparse
import json
import pathlib
import time

REPO = pathlib.Path(__file__).resolve().parents[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="a .keras file or shipped name (default)")
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "datasets" / "RAF-DB"))
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--methods", default="gradcam,gradcam++,layercam,faster-scorecam")
    parser.add_argument("--layers", default="stage5_conv,stage4_conv")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()

    from gimefive_tf import load_model
    from gimefive_tf.data import load_arrays, read_dataset, stratified_split
    from gimefive_tf.explain.metrics import faithfulness

    model = load_model(args.model)
    _, validation = stratified_split(read_dataset(args.data), 0.1, seed=0)
    images, _ = load_arrays(validation.sample(args.limit, args.seed), model.input_shape[1])
    results = {"model": args.model or "default", "data": args.data, "faces": len(images),
               "layers": {}}
    for layer in args.layers.split(","):
        start = time.perf_counter()
        table = faithfulness(model, images, args.methods.split(","), layer=layer, seed=args.seed)
        table["seconds"] = round(time.perf_counter() - start, 1)
        results["layers"][layer] = table
        print(json.dumps({layer: table}), flush=True)
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
