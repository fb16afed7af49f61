"""Pack a dataset and its seeded validation split into one .npz for `train_on_gpu.py`.

The accelerator machine has no TensorFlow and cannot see `../shared`, so the encoded JPEG bytes
travel (45.8 MB for both sets, a third of the decoded grayscale pixels) with the labels and the same
`stratified_split(table, 0.1, seed=0)` the CPU runs and the model cards use. PIL decodes them
there with libjpeg's accurate IDCT, tf.data here with its fast one: a pixel differs by at most a
few levels, which training does not notice; every accuracy we report is measured here, through
tf.data, on the returned weights.

    python accelerator/pack_data.py ../shared/datasets/RAF-DB .accel/rafdb.npz
"""

import os

import numpy as np

from gimefive_tf.cli import ArgumentParser, run_cli
from gimefive_tf.errors import GiMeFiveError


def main(argv=None):
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="a dataset folder gimefive_tf.data can read")
    parser.add_argument("out", help="the .npz to write (never overwritten)")
    parser.add_argument("--val-split", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not args.out.endswith(".npz"):
        raise GiMeFiveError(f"{args.out}: name the pack <something>.npz")
    if os.path.exists(args.out):
        raise GiMeFiveError(f"{args.out} exists; choose another path")
    from gimefive_tf.data import read_dataset, stratified_split

    table = read_dataset(args.data)
    train, validation = stratified_split(table, args.val_split, seed=args.seed)
    paths = list(train.frame["source"]) + list(validation.frame["source"])
    labels = np.concatenate([train.labels, validation.labels]).astype(np.uint8)
    is_validation = np.r_[np.zeros(len(train), bool), np.ones(len(validation), bool)]
    blobs = [open(path, "rb").read() for path in paths]
    offsets = np.cumsum([0] + [len(blob) for blob in blobs]).astype(np.int64)
    np.savez(args.out, encoded=np.frombuffer(b"".join(blobs), np.uint8), offsets=offsets,
             labels=labels, is_validation=is_validation,
             names=np.array([os.path.basename(p) for p in paths]))
    print(f"{args.out}: {len(train)} training + {len(validation)} validation images, "
          f"{offsets[-1] / 1e6:.1f} MB encoded")


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
