"""Images per second of `batch` (Beam's DirectRunner, 1 and 2 workers) against `scores` on the
same RAF-DB face crops, where the time goes, and the rows' accuracy against `evaluate`'s, as JSON.

    python benchmarks/batch_throughput.py [--data ../shared/datasets/RAF-DB] [--images 2388]

A seeded random `--images` of the RAF-DB faces are linked into class folders (plus one truncated
JPEG, which must land in the dead letters); every command runs as a user runs it (its own
process, the shipped model, `--crop none`). Each is also run on `--small` of the images, so its
wall time splits into start-up (the intercept) and per-image cost (the slope).
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
WORKERS = {1: [], 2: ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"]}


def faces_folder(data, count, folder):
    """`count` seeded random RAF-DB faces linked as folder/<emotion>/<file>, and a truncated
    JPEG; returns the labels table."""
    import pandas as pd

    from gimefive_tf.labels import EMOTIONS

    table = pd.read_csv(data / "train_RAF_labels.csv", header=None, names=["file", "label"])
    table = table.sample(count, random_state=0)
    for row in table.itertuples():
        (folder / EMOTIONS[row.label]).mkdir(parents=True, exist_ok=True)
        os.symlink(data / "train" / row.file, folder / EMOTIONS[row.label] / row.file)
    first = data / "train" / table.file.iloc[0]
    (folder / "truncated.jpg").write_bytes(first.read_bytes()[:300])
    return table


def run(command):
    """(wall seconds, stdout) of one command in its own process."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", *command], capture_output=True, text=True,
                            cwd=REPO)
    if result.returncode:
        raise SystemExit(f"{' '.join(command)} failed: {result.stderr.strip()}")
    return time.perf_counter() - started, result.stdout


def timed(name, folder, out, workers):
    if name == "scores":
        return run(["gimefive_tf.scores", str(folder), "--out", str(out / "scores.csv"),
                    "--digits", "6"])
    seconds, stdout = run(["gimefive_tf.batch", str(folder), "--out", str(out / "rows"),
                           "--crop", "none", "--json", *WORKERS[workers]])
    return seconds, json.loads(stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=pathlib.Path,
                        default=REPO.parent / "shared" / "datasets" / "RAF-DB")
    parser.add_argument("--images", type=int, default=2388)
    parser.add_argument("--small", type=int, default=100)
    args = parser.parse_args()
    import pandas as pd

    results = {"images": args.images, "cpus": os.cpu_count(), "runs": {}}
    with tempfile.TemporaryDirectory() as root:
        root = pathlib.Path(root)
        faces_folder(args.data, args.images, root / "big")
        faces_folder(args.data, args.small, root / "small")
        for name, workers in (("scores", 1), ("batch", 1), ("batch", 2)):
            label = name if name == "scores" else f"batch_{workers}_worker"
            (root / label / "small").mkdir(parents=True)
            (root / label / "big").mkdir(parents=True)
            small, _ = timed(name, root / "small", root / label / "small", workers)
            big, summary = timed(name, root / "big", root / label / "big", workers)
            per_image = (big - small) / (args.images - args.small)
            entry = {"wall_s": round(big, 1), "images_per_s": round(args.images / big, 1),
                     "startup_s": round(small - args.small * per_image, 1),
                     "per_image_ms": round(1000 * per_image, 2),
                     "steady_images_per_s": round(1 / per_image, 1)}
            if name == "batch":
                entry.update({k: summary[k] for k in ("rows", "dead_letters", "seconds")})
                entry["pipeline_images_per_s"] = summary["images_per_s"]
            results["runs"][label] = entry
        rows = pd.concat(pd.read_csv(f) for f in (root / "batch_1_worker" / "big" / "rows")
                         .glob("rows-*"))
        dead = pd.concat(pd.read_csv(f) for f in (root / "batch_1_worker" / "big" / "rows")
                         .glob("dead_letter-*"))
        truth = rows.input.map(lambda path: pathlib.Path(path).parent.name)
        _, report = run(["gimefive_tf.evaluate", str(root / "big"), "--json"])
        results["must_show"] = {
            "rows": len(rows), "one_row_per_image": len(rows) == rows.input.nunique()
            == args.images, "dead_letters": dead.to_dict("records"),
            "accuracy_from_rows": round(float((rows.emotion == truth).mean()), 6),
            "accuracy_evaluate": round(json.loads(report)["accuracy"], 6)}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
