"""Images/s of the input pipeline (read + decode + resize + batch) on a real dataset, as JSON.

    python benchmarks/pipeline_throughput.py [PATH]   # default ../shared/datasets/RAF-DB

"cold" decodes every JPEG from disk; "cached" is a second pass over the in-memory cache, which
is what every epoch after the first reads during training. Compare with the training step
(~120 images/s for GiMeFive on 2 cores): the pipeline must never be the bottleneck.
"""

import argparse
import json
import pathlib
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]


def images_per_second(dataset):
    start = time.perf_counter()
    count = 0
    for images, _ in dataset:
        count += int(images.shape[0])
    return count, count / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", nargs="?", default=str(REPO.parent / "shared" / "datasets" / "RAF-DB"))
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()

    from gimefive_tf.data import make_dataset, read_dataset

    start = time.perf_counter()
    table = read_dataset(args.path, validate=False)
    read_seconds = time.perf_counter() - start
    dataset = make_dataset(table, batch_size=args.batch, shuffle=True, cache=True)
    count, cold = images_per_second(dataset)
    _, cached = images_per_second(dataset)
    print(json.dumps({"path": args.path, "images": count, "batch": args.batch,
                      "read_table_seconds": round(read_seconds, 2),
                      "cold_images_per_s": round(cold, 1),
                      "cached_images_per_s": round(cached, 1)}, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
