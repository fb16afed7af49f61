"""Heatmaps per second for a batch of 64 faces in one call, per method, as JSON.

    python benchmarks/explain_throughput.py [--model M.keras] [--data PATH]

Uses the GiMeFive architecture (speed does not depend on the weights) and real RAF-DB faces
when ../shared/datasets is present, random pixels otherwise.
"""

import argparse
import json
import pathlib
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help=".keras model (default: an untrained gimefive)")
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "datasets" / "RAF-DB"))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--methods", default="gradcam,gradcam++,layercam,saliency,faster-scorecam")
    args = parser.parse_args()

    from gimefive_tf.explain import make_explainer
    from gimefive_tf.loading import load_model
    from gimefive_tf.models import create_model

    model = load_model(args.model) if args.model else create_model("gimefive")
    if pathlib.Path(args.data).exists():
        from gimefive_tf.data import load_arrays, read_dataset

        table = read_dataset(args.data, validate=False)
        images, _ = load_arrays(table.subset(np.arange(args.batch)))
        source = args.data
    else:
        images = np.random.default_rng(0).integers(0, 256, (args.batch, 64, 64, 3))
        source = "random pixels"
    results = {"batch": args.batch, "images": source, "methods": {}}
    for method in args.methods.split(","):
        explainer = make_explainer(model, method, batch_size=args.batch)
        explainer(images[:2])  # trace once
        start = time.perf_counter()
        maps, _ = explainer(images)
        seconds = time.perf_counter() - start
        assert maps.shape == (args.batch, 64, 64)
        results["methods"][method] = {"seconds": round(seconds, 3),
                                      "maps_per_second": round(args.batch / seconds, 1)}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
