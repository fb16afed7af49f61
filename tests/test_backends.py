"""The layers are pure keras.ops: the same saved model must give the same outputs under JAX."""

import importlib.util
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from gimefive_tf.layers import ConvBlock, Preprocess, ResidualBlock, SqueezeExcite
from gimefive_tf.models import create_model

pytestmark = pytest.mark.skipif(importlib.util.find_spec("jax") is None,
                                reason="the second backend (jax) is not installed")

RUN_UNDER_JAX = textwrap.dedent("""
    import sys, keras, numpy as np
    import gimefive_tf.layers  # registers the layers
    assert keras.backend.backend() == "jax", keras.backend.backend()
    model = keras.saving.load_model(sys.argv[1], safe_mode=True)
    np.save(sys.argv[3], np.asarray(model.predict(np.load(sys.argv[2]), verbose=0)))
""")


def every_layer_model():
    """Preprocess, ConvBlock (two convs, shared BN), SqueezeExcite and ResidualBlock in one net."""
    inputs = keras.Input((32, 32, 3))
    x = Preprocess()(inputs)
    x = ConvBlock(16, convs=2, shared_norm=True, activation="gelu", pooling="avg")(x)
    x = SqueezeExcite(reduction=4)(x)
    x = ResidualBlock(32, strides=2, activation="elu")(x)
    x = ResidualBlock(32)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(6)(x))


def randomize(model, seed=0):
    """Random weights everywhere, batch-norm statistics included, so nothing is at its init."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        values = rng.normal(0, 0.2, weight.shape)
        if weight.path.endswith("moving_variance"):
            values = np.abs(values) + 0.5
        weight.assign(values.astype("float32"))


@pytest.mark.parametrize("build", [every_layer_model, lambda: create_model("gimefive_se")],
                         ids=["every_layer", "gimefive_se"])
def test_jax_backend_matches_tensorflow(build, tmp_path):
    model = build()
    randomize(model)
    size = model.input_shape[1]
    x = np.random.default_rng(1).integers(0, 256, (4, size, size, 3)).astype("float32")
    expected = model.predict(x, verbose=0)
    model.save(tmp_path / "model.keras")
    np.save(tmp_path / "x.npy", x)

    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run(
        [sys.executable, "-c", RUN_UNDER_JAX, str(tmp_path / "model.keras"),
         str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
        env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    got = np.load(tmp_path / "y.npy")
    assert keras.backend.backend() == "tensorflow"
    scale = np.abs(expected).max()
    np.testing.assert_allclose(got, expected, atol=1e-4 * max(scale, 1.0), rtol=1e-4)
    assert np.array_equal(got.argmax(1), expected.argmax(1))


def test_the_face_pipeline_runs_under_jax():
    """`KERAS_BACKEND=jax python -m gimefive_tf.predict` finds and classifies the demo face."""
    import json

    environment = {**os.environ, "KERAS_BACKEND": "jax"}
    done = subprocess.run([sys.executable, "-m", "gimefive_tf.predict", "--json"],
                          capture_output=True, text=True, env=environment, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    [record] = json.loads(done.stdout)
    assert record["face"] == 0 and record["emotion"] == "happiness"
