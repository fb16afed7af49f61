"""Model zoo: the GiMeFive builder, its config, and the paper's Table 2 presets."""

from gimefive_tf.models.config import GiMeFiveConfig
from gimefive_tf.models.gimefive import build_gimefive, feature_layer_names
from gimefive_tf.models.presets import Preset, available, create_model, get_preset, register
from gimefive_tf.models.resnet import build_resnet
from gimefive_tf.models.vgg import build_vgg
