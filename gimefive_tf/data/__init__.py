"""Datasets: readers for every public FER layout, the tf.data pipeline, splits and augmentation.

Names load on first use, so a command reading only CSVs (or answering --help) does not load
TensorFlow."""

import importlib

_HOMES = {
    "decode_image": "pipeline", "decoded_images": "pipeline", "load_arrays": "pipeline",
    "make_dataset": "pipeline", "resize_pixels": "pipeline", "training_stream": "pipeline",
    "LAYOUTS": "readers", "LabeledImages": "readers", "detect_layout": "readers",
    "read_dataset": "readers", "class_weights": "split", "stratified_split": "split",
}
__all__ = sorted(_HOMES)


def __getattr__(name):
    if name in _HOMES:
        return getattr(importlib.import_module(f"gimefive_tf.data.{_HOMES[name]}"), name)
    raise AttributeError(f"module 'gimefive_tf.data' has no attribute {name!r}")
