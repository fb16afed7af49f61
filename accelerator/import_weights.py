"""Turn the weight files `train_on_gpu.py` returns into a `.keras` GiMeFive model.

Each variable is matched by its Keras path (the builder names every layer), so a file from
another architecture or an incomplete set of parts is refused rather than loaded out of order.

    python accelerator/import_weights.py gpu/raf-t1.part*.npz --out runs/gpu-raf-t1.keras
"""

import argparse
import os
import sys

import numpy as np


def read_parts(paths):
    """{variable path: array} from every part of one run, in the model's variable order."""
    arrays, runs = {}, set()
    for path in paths:
        with np.load(path) as part:
            runs.add(str(part["__run__"]) if "__run__" in part.files else None)
            for key in part.files:
                if key in arrays:
                    raise ValueError(f"{path} repeats {key.split('|')[-1]}: pass each part once")
                if key != "__run__":
                    arrays[key] = part[key]
    if len(runs) != 1 or None in runs:
        raise ValueError(f"the parts come from different runs ({', '.join(map(str, runs))}); "
                         "pass the parts of one run")
    name, count = runs.pop().rsplit(":", 1)
    if int(count) != len(paths):
        raise ValueError(f"run {name} has {count} parts, {len(paths)} given")
    return {key.split("|", 1)[1]: arrays[key] for key in sorted(arrays)}


def build_with_weights(paths):
    from gimefive_tf.models import create_model

    arrays = read_parts(paths)
    model = create_model("gimefive")
    expected = [variable.path for variable in model.weights]
    if list(arrays) != expected:
        missing = sorted(set(expected) - set(arrays))
        raise ValueError(f"the parts do not hold this model's {len(expected)} variables "
                         f"(missing {len(missing)}: {', '.join(missing[:3])}...)")
    model.set_weights([arrays[name].astype("float32") for name in expected])
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="+", help="the <name>.partN.npz files of one model")
    parser.add_argument("--out", required=True, help="the .keras file to write (never overwritten)")
    args = parser.parse_args(argv)
    if os.path.exists(args.out):
        fail(f"{args.out} exists; choose another path")
    build_with_weights(args.parts).save(args.out)
    print(args.out)


def fail(message):
    """One line on stderr and exit code 2, as every command of the project does."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # a bad path or file: one line, no traceback
        fail(str(error).splitlines()[0] if str(error) else type(error).__name__)
