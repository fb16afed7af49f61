"""The one contract every gimefive_tf layer must honour, shared by all layer tests.

Config round trip, build and call, one fit step that moves the layer's weights, and a `.keras`
save and reload with safe_mode=True that gives identical outputs.
"""

import keras
import numpy as np


def wrap(layer, input_shape):
    """A small trainable model around `layer`: Input -> layer -> flatten -> dense(2)."""
    inputs = keras.Input(input_shape[1:])
    x = layer(inputs)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(2)(x)
    return keras.Model(inputs, outputs)


def assert_layer_contract(make_layer, input_shape, tmp_path, expected_output_shape=None,
                          low=-1.0, high=1.0):
    """Check `make_layer()` against the contract on inputs of `input_shape` (batch included)."""
    rng = np.random.default_rng(0)
    x = rng.uniform(low, high, size=input_shape).astype("float32")
    y = rng.integers(0, 2, size=(input_shape[0],))

    # Config round trip: from_config(get_config()) describes the same layer.
    layer = make_layer()
    config = layer.get_config()
    clone = layer.__class__.from_config(config)
    assert clone.get_config() == config

    # Build and call, eagerly and symbolically.
    output = keras.ops.convert_to_numpy(layer(x))
    if expected_output_shape is not None:
        assert output.shape == tuple(expected_output_shape)
    assert np.all(np.isfinite(output))

    # One fit step moves every trainable weight the layer has.
    model = wrap(make_layer(), input_shape)
    model.compile(optimizer=keras.optimizers.SGD(0.1),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    inner = model.layers[1]
    before = [keras.ops.convert_to_numpy(w).copy() for w in inner.trainable_weights]
    history = model.fit(x, y, epochs=1, batch_size=input_shape[0], verbose=0)
    assert np.isfinite(history.history["loss"][0])
    after = [keras.ops.convert_to_numpy(w) for w in inner.trainable_weights]
    for old, new, weight in zip(before, after, inner.trainable_weights):
        assert not np.array_equal(old, new), f"{weight.path} did not change in a fit step"

    # .keras save and reload under safe mode: identical inference outputs.
    path = tmp_path / "layer.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    assert type(reloaded.layers[1]) is type(inner)
    np.testing.assert_array_equal(model.predict(x, verbose=0), reloaded.predict(x, verbose=0))
    return output
