"""Model zoo: the GiMeFive builder, its config, and the paper's Table 2 presets.

The registry and configs load without Keras; builders (and Keras) load on first use."""

import importlib

from gimefive_tf.models.config import GiMeFiveConfig
from gimefive_tf.models.presets import Preset, available, create_model, get_preset, register

_BUILDERS = {"build_gimefive": "gimefive", "feature_layer_names": "gimefive",
             "build_resnet": "resnet", "build_vgg": "vgg"}
__all__ = ["GiMeFiveConfig", "Preset", "available", "create_model", "get_preset", "register",
           *_BUILDERS]


def __getattr__(name):
    if name in _BUILDERS:
        return getattr(importlib.import_module(f"gimefive_tf.models.{_BUILDERS[name]}"), name)
    raise AttributeError(f"module 'gimefive_tf.models' has no attribute {name!r}")
