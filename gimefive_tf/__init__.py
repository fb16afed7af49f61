"""gimefive_tf: interpretable facial emotion recognition (GiMeFive) in Keras 3."""

import os

# Quiet TensorFlow's C++ start-up chatter unless the user set a level; must precede its import.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from gimefive_tf.analyze import FacePipeline, analyze, to_frame  # noqa: E402
from gimefive_tf.errors import GiMeFiveError  # noqa: E402
from gimefive_tf.labels import EMOTIONS  # noqa: E402
from gimefive_tf.loading import load_model  # noqa: E402
from gimefive_tf.models import available, create_model  # noqa: E402

__version__ = "0.1.0"
__all__ = ["EMOTIONS", "FacePipeline", "GiMeFiveError", "analyze", "to_frame", "available", "create_model", "load_model", "__version__"]
