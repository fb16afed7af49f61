"""The GiMeFive builder: a GiMeFiveConfig becomes a functional keras.Model with stable layer names.

Layer names (explanations and feature-map plots select layers by them):
  pixels (input, RGB 0-255) -> preprocess
  plain:    stage{i}_conv (activated map, before pooling) [-> stage1_se] -> stage{i}_pool
            [-> stage{i}_dropout]
  residual: stem_conv -> stem_se -> stage{i}_conv (a stride-2 ResidualBlock)
  head:     global_pool -> fc1 [-> fc1_dropout] -> fc2 -> logits
The model outputs logits; apply softmax for probabilities.
"""

import keras

from gimefive_tf.layers import ConvBlock, Preprocess, ResidualBlock, SqueezeExcite, make_pooling
from gimefive_tf.models.config import GiMeFiveConfig


def build_gimefive(config=None, name="gimefive"):
    """Build the network described by `config` (default: the paper's 15-layer best model)."""
    config = config or GiMeFiveConfig()
    inputs = keras.Input((config.input_size, config.input_size, 3), name="pixels")
    x = Preprocess(name="preprocess")(inputs)
    x = (_residual_backbone if config.residual else _plain_backbone)(x, config)
    outputs = classifier_head(x, config)
    return keras.Model(inputs, outputs, name=name)


def feature_layer_names(model):
    """Names of the layers whose outputs are activated conv feature maps, input to output.

    These are the ConvBlock and ResidualBlock layers of any zoo model; the last one is where
    Grad-CAM looks by default (stage5_conv, 4x4, for the 64x64 GiMeFive).
    """
    return [layer.name for layer in model.layers
            if isinstance(layer, (ConvBlock, ResidualBlock))]


def _plain_backbone(x, config):
    for index, filters in enumerate(config.stage_widths, start=1):
        x = ConvBlock(filters, batch_norm=config.batch_norm, activation=config.activation,
                      pooling=None, name=f"stage{index}_conv")(x)
        if config.se and index == 1:
            x = SqueezeExcite(config.se_reduction, name="stage1_se")(x)
        x = make_pooling(config.pooling, name=f"stage{index}_pool")(x)
        if config.dropout and index < config.conv_depth:
            x = keras.layers.Dropout(config.dropout, name=f"stage{index}_dropout")(x)
    return x


def _residual_backbone(x, config):
    x = ConvBlock(config.base_filters, batch_norm=config.batch_norm,
                  activation=config.activation, pooling=None, name="stem_conv")(x)
    if config.se:
        x = SqueezeExcite(config.se_reduction, name="stem_se")(x)
    for index, filters in enumerate(config.stage_widths, start=1):
        x = ResidualBlock(filters, strides=2, activation=config.activation, use_bias=True,
                          name=f"stage{index}_conv")(x)
    return x


def classifier_head(x, config):
    """Global average pooling, then the dense stack (2C, C, ..., num_classes logits)."""
    x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
    for index, units in enumerate(config.dense_widths, start=1):
        x = keras.layers.Dense(units, activation=config.activation, name=f"fc{index}")(x)
        if index == 1 and config.head_dropout:
            x = keras.layers.Dropout(config.head_dropout, name="fc1_dropout")(x)
    return keras.layers.Dense(config.num_classes, name="logits")(x)
