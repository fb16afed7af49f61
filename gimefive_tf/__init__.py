"""gimefive_tf: interpretable facial emotion recognition (GiMeFive) in Keras 3."""

# First: TensorFlow, when something loads it, loads without its C++ start-up lines.
import gimefive_tf.quiet  # noqa: F401
from gimefive_tf.analyze import FacePipeline, analyze, to_frame  # noqa: E402
from gimefive_tf.errors import GiMeFiveError  # noqa: E402
from gimefive_tf.labels import EMOTIONS  # noqa: E402
from gimefive_tf.loading import load_model  # noqa: E402

__version__ = "0.1.0"
__all__ = ["EMOTIONS", "FacePipeline", "GiMeFiveError", "analyze", "available", "create_model",
           "load_model", "to_frame", "__version__"]


def __getattr__(name):
    """`available` and `create_model` import Keras (and TensorFlow): only when first asked for,
    so a command answers --help before any of that loads."""
    if name in ("available", "create_model"):
        from gimefive_tf import models

        return getattr(models, name)
    raise AttributeError(f"module 'gimefive_tf' has no attribute {name!r}")
