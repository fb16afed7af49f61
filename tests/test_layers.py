import keras
import numpy as np
import pytest
from PIL import Image

from gimefive_tf.errors import GiMeFiveError
from gimefive_tf.layers import (IMAGENET_MEAN, IMAGENET_STD, ConvBlock, Preprocess,
                                ResidualBlock, SqueezeExcite)
from layer_contract import assert_layer_contract


@pytest.mark.parametrize("kwargs, out_shape", [
    ({}, (2, 4, 4, 8)),
    ({"pooling": None, "dropout": 0.2}, (2, 8, 8, 8)),
    ({"pooling": "avg", "activation": "gelu", "batch_norm": False}, (2, 4, 4, 8)),
    ({"convs": 2, "shared_norm": True, "pooling": None}, (2, 8, 8, 8)),
    ({"kernel_size": 7, "strides": 2, "use_bias": False, "pooling": None}, (2, 4, 4, 8)),
])
def test_conv_block_contract(kwargs, out_shape, tmp_path):
    assert_layer_contract(lambda: ConvBlock(8, **kwargs), (2, 8, 8, 3), tmp_path, out_shape)


def test_conv_block_shared_norm_has_one_batch_norm():
    shared = ConvBlock(8, convs=2, shared_norm=True)
    separate = ConvBlock(8, convs=2)
    shared.build((None, 8, 8, 8))
    separate.build((None, 8, 8, 8))
    assert len(shared.norm_layers) == 1 and len(separate.norm_layers) == 2
    assert shared.count_params() == separate.count_params() - 4 * 8


def test_squeeze_excite_contract(tmp_path):
    out = assert_layer_contract(lambda: SqueezeExcite(reduction=4), (2, 4, 4, 16), tmp_path,
                                (2, 4, 4, 16), low=-1.0, high=1.0)
    layer = SqueezeExcite(reduction=4)
    layer.build((None, 4, 4, 16))
    assert layer.count_params() == 16 * 4 + 4 * 16  # two bias-free dense layers
    assert out.shape == (2, 4, 4, 16)


def test_squeeze_excite_gates_each_channel_within_its_input():
    # The gate is a sigmoid, so every output lies between 0 and the input, channel by channel.
    x = np.abs(np.random.default_rng(1).normal(size=(1, 3, 3, 32))).astype("float32")
    y = keras.ops.convert_to_numpy(SqueezeExcite()(x))
    ratio = y / x
    assert np.all((ratio > 0) & (ratio < 1))
    np.testing.assert_allclose(ratio, ratio[:, :1, :1, :].repeat(3, 1).repeat(3, 2), rtol=1e-5)


@pytest.mark.parametrize("filters, strides, out_shape, projection", [
    (8, 1, (2, 8, 8, 8), False),
    (16, 1, (2, 8, 8, 16), True),
    (8, 2, (2, 4, 4, 8), True),
])
def test_residual_block_contract(filters, strides, out_shape, projection, tmp_path):
    assert_layer_contract(lambda: ResidualBlock(filters, strides=strides), (2, 8, 8, 8), tmp_path,
                          out_shape)
    block = ResidualBlock(filters, strides=strides)
    block.build((None, 8, 8, 8))
    assert block.projection is projection


def test_residual_block_identity_shortcut_adds_input():
    # With the conv branch zeroed, the block is relu(x): the shortcut carries the input.
    block = ResidualBlock(4)
    x = np.random.default_rng(2).normal(size=(1, 5, 5, 4)).astype("float32")
    block(x)
    block.bn2.gamma.assign(np.zeros(4, "float32"))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(block(x)), np.maximum(x, 0), atol=1e-6)


def test_preprocess_contract(tmp_path):
    assert_layer_contract(lambda: Preprocess(), (2, 8, 8, 3), tmp_path, (2, 8, 8, 3),
                          low=0.0, high=255.0)


def _torchvision_reference(rgb):
    """What the paper's transforms did: Grayscale(3) via PIL, ToTensor, Normalize(ImageNet)."""
    gray = np.stack([np.asarray(Image.fromarray(img).convert("L")) for img in rgb])
    x = np.repeat(gray[..., None], 3, axis=-1).astype("float32") / 255.0
    return (x - np.array(IMAGENET_MEAN, "float32")) / np.array(IMAGENET_STD, "float32")


def test_preprocess_matches_the_papers_pil_pipeline_exactly():
    rgb = np.random.default_rng(3).integers(0, 256, size=(16, 16, 16, 3), dtype=np.uint8)
    ours = keras.ops.convert_to_numpy(Preprocess()(rgb.astype("float32")))
    np.testing.assert_allclose(ours, _torchvision_reference(rgb), atol=1e-6)


def test_preprocess_accepts_uint8_and_one_channel():
    gray = np.random.default_rng(4).integers(0, 256, size=(2, 4, 4, 1), dtype=np.uint8)
    ours = keras.ops.convert_to_numpy(Preprocess()(gray))
    rgb = np.repeat(gray, 3, axis=-1)
    np.testing.assert_allclose(ours, _torchvision_reference(rgb), atol=1e-6)


def test_preprocess_keeps_input_gradients_for_saliency():
    import tensorflow as tf

    x = tf.constant(np.random.default_rng(5).uniform(0, 255, (1, 4, 4, 3)).astype("float32"))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(Preprocess()(x))
    grad = tape.gradient(y, x).numpy()
    expected = np.array([19595, 38470, 7471]) / 65536 / 255 * np.sum(1 / np.array(IMAGENET_STD))
    np.testing.assert_allclose(grad[0, 0, 0], expected, rtol=1e-5)


def test_preprocess_color_mode_skips_grayscale():
    rgb = np.random.default_rng(6).integers(0, 256, size=(1, 2, 2, 3)).astype("float32")
    ours = keras.ops.convert_to_numpy(Preprocess(grayscale=False)(rgb))
    expected = (rgb / 255.0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(ours, expected, atol=1e-6)


@pytest.mark.parametrize("make, field", [
    (lambda: ConvBlock(8, activation="nope"), "activation"),
    (lambda: ConvBlock(8, pooling="min"), "pooling"),
    (lambda: ConvBlock(8, dropout=-0.1), "dropout"),
    (lambda: ConvBlock(8, convs=0), "convs"),
    (lambda: SqueezeExcite(reduction=0), "reduction"),
    (lambda: ResidualBlock(8, activation="swish"), "activation"),
])
def test_bad_layer_arguments_name_the_field(make, field):
    with pytest.raises(GiMeFiveError, match=field):
        make()


def test_preprocess_rejects_four_channels():
    with pytest.raises(GiMeFiveError, match="1- or 3-channel"):
        Preprocess()(np.zeros((1, 2, 2, 4), "float32"))
