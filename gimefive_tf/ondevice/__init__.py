"""The on-device reference pipeline: the whole face job from the bundle that
`python -m gimefive_tf.export --formats mobile` writes, with LiteRT, numpy and Pillow only.

    >>> from gimefive_tf.ondevice import OnDevicePipeline
    >>> pipeline = OnDevicePipeline("export/mobile")
    >>> pipeline.records(picture, "photo.jpg")   # the records `predict --json` prints

`pipeline` is what a phone app does, line for line; `python -m gimefive_tf.ondevice BUNDLE
PICTURE...` runs it.
"""

from gimefive_tf.ondevice.pipeline import (NO_FACE, BundleError, OnDevicePipeline, read_picture,
                                           read_spec)

__all__ = ["NO_FACE", "BundleError", "OnDevicePipeline", "read_picture", "read_spec"]
