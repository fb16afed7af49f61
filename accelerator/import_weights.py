"""Turn the weight files `train_on_gpu.py` returns into a `.keras` GiMeFive model.

Each variable is matched by its Keras path (the builder names every layer), so a file from
another architecture or an incomplete set of parts is refused rather than loaded out of order.

    python accelerator/import_weights.py gpu/raf-t1.part*.npz --out runs/gpu-raf-t1.keras
"""

import os

import numpy as np

from gimefive_tf.cli import ArgumentParser, run_cli
from gimefive_tf.errors import GiMeFiveError


def read_parts(paths):
    """{variable path: array} from every part of one run, in the model's variable order."""
    arrays, runs = {}, set()
    for path in paths:
        with np.load(path) as part:
            runs.add(str(part["__run__"]) if "__run__" in part.files else None)
            for key in part.files:
                if key in arrays:
                    raise GiMeFiveError(f"{path} repeats {key.split('|')[-1]}: pass each part once")
                if key != "__run__":
                    arrays[key] = part[key]
    if len(runs) != 1 or None in runs:
        raise GiMeFiveError(f"the parts come from different runs ({', '.join(map(str, runs))}); "
                         "pass the parts of one run")
    name, count = runs.pop().rsplit(":", 1)
    if int(count) != len(paths):
        raise GiMeFiveError(f"run {name} has {count} parts, {len(paths)} given")
    return {key.split("|", 1)[1]: arrays[key] for key in sorted(arrays)}


def build_with_weights(paths):
    from gimefive_tf.models import create_model

    arrays = read_parts(paths)
    model = create_model("gimefive")
    expected = [variable.path for variable in model.weights]
    if list(arrays) != expected:
        missing = sorted(set(expected) - set(arrays))
        raise GiMeFiveError(f"the parts do not hold this model's {len(expected)} variables "
                         f"(missing {len(missing)}: {', '.join(missing[:3])}...)")
    model.set_weights([arrays[name].astype("float32") for name in expected])
    return model


def main(argv=None):
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="+", help="the <name>.partN.npz files of one model")
    parser.add_argument("--out", required=True, help="the .keras file to write (never overwritten)")
    args = parser.parse_args(argv)
    if os.path.exists(args.out):
        raise GiMeFiveError(f"{args.out} exists; choose another path")
    build_with_weights(args.parts).save(args.out)
    print(args.out)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
