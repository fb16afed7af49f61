"""ResNet18/34 (He et al., 2016) for 64x64 faces, as torchvision builds them, with a 6-way head."""

import keras

from gimefive_tf.choices import check_choice
from gimefive_tf.labels import NUM_CLASSES
from gimefive_tf.layers import ConvBlock, Preprocess, ResidualBlock

BLOCKS_PER_STAGE = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}
STAGE_WIDTHS = (64, 128, 256, 512)


def build_resnet(depth=18, num_classes=NUM_CLASSES, input_size=64, name=None):
    """7x7/2 stem conv (no bias) + BN + ReLU, 3x3/2 max pool, basic-block stages, GAP, logits."""
    check_choice("depth", depth, tuple(BLOCKS_PER_STAGE))
    inputs = keras.Input((input_size, input_size, 3), name="pixels")
    x = Preprocess(name="preprocess")(inputs)
    x = ConvBlock(64, kernel_size=7, strides=2, pooling=None, use_bias=False, name="stem_conv")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    for stage, (blocks, filters) in enumerate(zip(BLOCKS_PER_STAGE[depth], STAGE_WIDTHS), start=1):
        for block in range(1, blocks + 1):
            strides = 2 if stage > 1 and block == 1 else 1
            x = ResidualBlock(filters, strides=strides, name=f"stage{stage}_block{block}")(x)
    x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name or f"resnet{depth}")
