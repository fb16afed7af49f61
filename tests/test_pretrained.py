"""The shipped models: each loads safely, and is as accurate as its model card says on faces it
never trained on (the seeded 10% validation split of its dataset, carved exactly as training
carved it)."""

import numpy as np
import pytest

from gimefive_tf.loading import DEFAULT_MODEL, SHIPPED_MODELS, load_model

# Accuracy of each shipped model on the first 400 validation images of its dataset (sorted by
# file name), as measured when it was shipped, less a margin; a re-export that changes
# predictions fails this test.
SAMPLE = 400
EXPECTED = {  # name: (dataset folder, minimum sample accuracy)
    "rafdb": ("RAF-DB", 0.88),  # measured 0.8975 (attempt 9 in MODEL_CARD.md; attempt 4: 0.900)
    "fer2013": ("FER2013", 0.72),  # measured 0.740 (attempt 3 in MODEL_CARD_FER2013.md)
}


def installed(name):
    return pytest.param(name, marks=pytest.mark.skipif(
        not SHIPPED_MODELS[name].exists(), reason=f"shipped model {name} not installed"))


@pytest.mark.parametrize("name", [installed(name) for name in EXPECTED])
def test_shipped_model_loads_with_its_architecture(name):
    model = load_model(name)
    assert model.name == "gimefive" and model.input_shape == (None, 64, 64, 3)
    assert model.get_layer("stage5_conv").output.shape == (None, 4, 4, 1024)
    assert SHIPPED_MODELS[name].stat().st_size <= 45 * 2 ** 20


@pytest.mark.parametrize("name", [installed(name) for name in EXPECTED])
def test_each_shipped_model_frames_faces_by_its_own_calibration(name):
    from gimefive_tf.faces import find_calibration

    path, calibration = find_calibration(SHIPPED_MODELS[name])
    assert path == SHIPPED_MODELS[name].with_name(f"gimefive_{name}.framing.json")
    assert {"blazeface", "mtcnn", "haar"} <= set(calibration)


def test_the_default_model_is_rafdb():
    assert DEFAULT_MODEL == "rafdb"


@pytest.mark.data
@pytest.mark.parametrize("name", [installed(name) for name in EXPECTED])
def test_shipped_model_accuracy_on_held_out_validation_faces(name, datasets_dir):
    from gimefive_tf.data import load_arrays, read_dataset, stratified_split
    from gimefive_tf.inference import Predictor

    folder, minimum = EXPECTED[name]
    _, validation = stratified_split(read_dataset(datasets_dir / folder), 0.1, seed=0)
    order = np.argsort(validation.frame["source"].to_numpy())[:SAMPLE]
    images, labels = load_arrays(validation.subset(order))
    accuracy = (Predictor(load_model(name))(images).argmax(1) == labels).mean()
    assert accuracy >= minimum
