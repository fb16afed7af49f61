import keras
import numpy as np
import pytest

from gimefive_tf.errors import GiMeFiveError
from gimefive_tf.explain import METHODS, heatmaps, make_explainer
from gimefive_tf.models import create_model


class TopLeftOnly(keras.layers.Layer):
    """Zeroes every pixel outside the top-left quadrant."""

    def call(self, x):
        h, w = x.shape[1] // 2, x.shape[2] // 2
        mask = np.zeros((1, x.shape[1], x.shape[2], 1), "float32")
        mask[:, :h, :w] = 1
        return x * mask


def quadrant_model(size=32):
    """Logits depend only on the top-left quadrant; GAP -> dense head, so CAM applies too."""
    inputs = keras.Input((size, size, 3))
    x = TopLeftOnly()(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="features")(x)
    x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
    outputs = keras.layers.Dense(6, name="logits")(x)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    conv = model.get_layer("features")
    conv.kernel.assign(rng.uniform(0.01, 0.1, conv.kernel.shape).astype("float32"))
    conv.bias.assign(np.zeros(8, "float32"))
    dense = model.get_layer("logits")
    dense.kernel.assign(rng.uniform(0.1, 1.0, dense.kernel.shape).astype("float32"))
    return model


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(1).uniform(20, 255, (5, 32, 32, 3)).astype("float32")


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_finds_the_quadrant_the_logit_depends_on(method, images):
    model = quadrant_model()
    maps = heatmaps(model, images, method=method)
    assert maps.shape == (5, 32, 32) and maps.dtype == np.float32
    assert np.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1
    share = maps[:, :16, :16].sum((1, 2)) / maps.sum((1, 2))
    assert (share > 0.7).all(), (method, share)


@pytest.mark.parametrize("method", ["gradcam", "saliency"])
def test_single_images_and_explicit_targets(method, images):
    model = quadrant_model()
    one = heatmaps(model, images[0], method=method, target="fear")
    assert one.shape == (32, 32)
    explainer = make_explainer(model, method)
    _, targets = explainer(images, target=["happiness", 1, 2, "anger", "disgust"])
    assert targets.tolist() == [0, 1, 2, 3, 4]
    _, predicted = explainer(images)
    assert predicted.tolist() == model.predict(images, verbose=0).argmax(1).tolist()


def test_explaining_never_modifies_the_callers_model(images):
    model = create_model("gimefive", input_size=32, conv_depth=3, base_filters=8)
    before = [w.copy() for w in model.get_weights()]
    outputs = model.predict(images, verbose=0)
    for method in ("gradcam", "gradcam++", "layercam", "faster-scorecam", "smoothgrad"):
        heatmaps(model, images, method=method)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    np.testing.assert_array_equal(outputs, model.predict(images, verbose=0))


def test_default_layer_is_the_last_conv_stage_4x4_map():
    explainer = make_explainer(create_model("gimefive"), "gradcam")
    assert explainer.layer == "stage5_conv"
    assert tuple(explainer.feature_model.outputs[0].shape[1:3]) == (4, 4)


def test_cam_needs_a_pooling_dense_head():
    with pytest.raises(GiMeFiveError, match="global average pooling followed by one dense"):
        make_explainer(create_model("gimefive", input_size=32, conv_depth=3), "cam")
    model = create_model("gimefive", input_size=32, conv_depth=3, fc_depth=1, base_filters=8)
    maps = heatmaps(model, np.zeros((2, 32, 32, 3), "float32") + 100, method="cam")
    assert maps.shape == (2, 32, 32)


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "occlusion"}, "method='occlusion' is not allowed"),
    ({"method": "gradcam", "layer": "nope"}, "no layer 'nope'"),
    ({"method": "gradcam", "layer": "global_pool"}, "no spatial feature map"),
    ({"method": "saliency", "layer": "features"}, "takes no layer"),
])
def test_bad_requests_are_clear_errors(kwargs, message):
    with pytest.raises(GiMeFiveError, match=message):
        make_explainer(quadrant_model(), **kwargs)


def test_bad_targets_and_shapes(images):
    explainer = make_explainer(quadrant_model(), "gradcam")
    with pytest.raises(GiMeFiveError, match="not one of"):
        explainer(images, target="neutral")
    with pytest.raises(GiMeFiveError, match="expected images of shape"):
        explainer(np.zeros((2, 16, 16, 3)))


def test_models_whose_outputs_are_a_list_work_too(images):
    # keras.Model(inputs, [logits]) (how inference copies are saved) has a list as .output
    base = quadrant_model()
    wrapped = keras.Model(base.inputs, base.outputs)
    np.testing.assert_allclose(heatmaps(wrapped, images), heatmaps(base, images), atol=1e-6)


@pytest.mark.parametrize("method", ["gradcam", "layercam"])
@pytest.mark.parametrize("mirror", [False, True])
def test_the_face_pipelines_traced_maps_equal_tf_keras_vis(method, mirror):
    """Per frame the face pipeline computes Grad-CAM and LayerCAM in one traced graph
    (decision.cam) instead of tf-keras-vis's eager call; the maps, targets and decisions agree."""
    model = create_model("gimefive", base_filters=8)
    faces = np.random.default_rng(2).uniform(0, 255, (6, 64, 64, 3)).astype("float32")
    reference = make_explainer(model, method, mirror=mirror)
    traced = make_explainer(model, method, mirror=mirror)
    traced.realtime = True
    expected_maps, expected_targets, expected_probabilities = reference.explain(faces)
    maps, targets, probabilities = traced.explain(faces)
    assert (targets == expected_targets).all()
    np.testing.assert_allclose(probabilities, expected_probabilities, atol=1e-5)
    np.testing.assert_allclose(maps, expected_maps, atol=1e-4)
