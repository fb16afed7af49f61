"""The paper's VGG+BN baseline (Table 2): six 3x3 convs in three stages, then a flattened dense head.

Each stage's two convs share one batch-norm layer, as in the paper's implementation; that
sharing is what gives its parameter count of 72,460,742.
"""

import keras

from gimefive_tf.labels import NUM_CLASSES
from gimefive_tf.layers import ConvBlock, Preprocess

STAGE_WIDTHS = (64, 128, 256)


def build_vgg(num_classes=NUM_CLASSES, input_size=64, head_dropout=0.5, name="vgg"):
    """VGG+BN: stages of two convs (64, 128, 256) with 2x2 max pooling, dense 4096 -> 1024 -> logits."""
    inputs = keras.Input((input_size, input_size, 3), name="pixels")
    x = Preprocess(name="preprocess")(inputs)
    for index, filters in enumerate(STAGE_WIDTHS, start=1):
        x = ConvBlock(filters, convs=2, shared_norm=True, pooling=None, name=f"stage{index}_conv")(x)
        x = keras.layers.MaxPooling2D(2, name=f"stage{index}_pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(4096, activation="relu", name="fc1")(x)
    if head_dropout:
        x = keras.layers.Dropout(head_dropout, name="fc1_dropout")(x)
    x = keras.layers.Dense(1024, activation="relu", name="fc2")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)
