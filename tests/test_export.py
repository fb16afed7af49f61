import json
import os

import numpy as np
import pytest
import tensorflow as tf

from fixtures import make_folders_dataset, write_image
from gimefive_tf.cli import run_cli
from gimefive_tf.data.pipeline import decode_image
from gimefive_tf.explain import heatmaps, make_explainer
from gimefive_tf.explain.methods import DEFAULT_METHOD
from gimefive_tf.export import SIGNATURES, TFLiteModel
from gimefive_tf.inference import Predictor
from gimefive_tf.export.__main__ import main as export_main
from gimefive_tf.loading import PRETRAINED_MODEL, load_model
from gimefive_tf.models import create_model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A small GiMeFive (random weights) exported in every format."""
    root = tmp_path_factory.mktemp("export")
    model = create_model("gimefive", base_filters=8)
    rng = np.random.default_rng(0)
    for weight in model.weights:  # random BN statistics too, so nothing is at its init
        if weight.path.endswith("moving_variance"):
            weight.assign(rng.uniform(0.5, 2, weight.shape).astype("float32"))
    model.save(root / "model.keras")
    make_folders_dataset(root / "faces", per_class=6, split_dirs=None)
    assert export_main(["--model", str(root / "model.keras"), "--out", str(root / "out"),
                        "--formats", "savedmodel,tflite,tflite-fp16,tflite-int8,tflite-cam",
                        "--calibration-data", str(root / "faces"), "--json"]) == 0
    return root, load_model(root / "model.keras")


def keras_probabilities(model, pixels):
    return tf.nn.softmax(model.predict(np.asarray(pixels, np.float32), verbose=0)).numpy()


def test_savedmodel_serves_encoded_images_of_any_size_and_channels(exported, tmp_path):
    root, model = exported
    files = []
    for name, shape in [("a.jpg", (64, 64, 3)), ("b.jpg", (120, 90, 3)), ("c.jpg", (33, 47, 3)),
                        ("gray.png", (80, 80)), ("rgba.png", (50, 64, 4))]:
        write_image(tmp_path / name, shape, seed=len(files))
        files.append((tmp_path / name).read_bytes())
    loaded = tf.saved_model.load(str(root / "out" / "savedmodel" / "gimefive" / "1"))
    assert set(loaded.signatures) >= set(SIGNATURES)
    served = loaded.signatures["serving_default"](images=tf.constant(files))
    pixels = np.stack([decode_image(tf.constant(data)).numpy() for data in files])
    expected = keras_probabilities(model, pixels)
    assert np.abs(served["probabilities"].numpy() - expected).max() < 1e-4
    assert served["label_id"].numpy().tolist() == expected.argmax(1).tolist()
    assert [v.decode() for v in served["label"].numpy()][0] in (
        "happiness", "surprise", "sadness", "anger", "disgust", "fear")
    explained = loaded.signatures["explain"](pixels=tf.constant(pixels))
    heat = explained["heatmap"].numpy()
    assert heat.shape == (5, 64, 64) and heat.min() >= 0 and heat.max() <= 1
    keras_maps = heatmaps(model, pixels, DEFAULT_METHOD)
    assert np.abs(heat - keras_maps).max() < 1e-3


def test_savedmodel_stores_each_weight_once(exported):
    """Keras' ExportArchive.track() would store every weight twice (keras-team/keras#23553)."""
    root, model = exported
    reader = tf.train.load_checkpoint(
        str(root / "out" / "savedmodel" / "gimefive" / "1" / "variables" / "variables"))
    stored = sum(int(np.prod(shape)) for key, shape in reader.get_variable_to_shape_map().items()
                 if key.endswith("VARIABLE_VALUE"))
    assert stored == model.count_params()


def test_tflite_variants_match_the_keras_model(exported):
    root, model = exported
    pixels = np.random.default_rng(3).integers(0, 256, (8, 64, 64, 3)).astype(np.uint8)
    expected = keras_probabilities(model, pixels)
    folder = root / "out" / "tflite"
    fp32 = TFLiteModel(folder / "gimefive_fp32.tflite")
    assert fp32.input["dtype"] == np.uint8
    got = np.stack([fp32(image)["probabilities"] for image in pixels])
    assert np.abs(got - expected).max() < 1e-4
    fp16 = np.stack([TFLiteModel(folder / "gimefive_fp16.tflite")(image)["probabilities"]
                     for image in pixels])
    assert np.abs(fp16 - expected).max() < 1e-2
    # the cam model decides and explains as the face pipeline does: mirror-averaged
    cam = TFLiteModel(folder / "gimefive_cam.tflite")
    outputs = [cam(image) for image in pixels]
    mirrored = Predictor(model, mirror=True)(pixels)
    assert np.abs(np.stack([o["probabilities"] for o in outputs]) - mirrored).max() < 1e-4
    lite_maps = np.stack([o["heatmap"] for o in outputs])
    keras_maps = heatmaps(model, pixels, DEFAULT_METHOD, mirror=True)
    for a, b in zip(lite_maps, keras_maps):
        assert np.corrcoef(a.ravel(), b.ravel())[0, 1] >= 0.99
    assert (folder / "labels.txt").read_text().split() == [
        "happiness", "surprise", "sadness", "anger", "disgust", "fear"]
    report = json.loads((root / "out" / "report.json").read_text())
    assert [r["artifact"] for r in report] == ["keras", "savedmodel", "tflite", "tflite-fp16",
                                               "tflite-int8", "tflite-cam"]


@pytest.mark.data
@pytest.mark.skipif(not PRETRAINED_MODEL.exists(), reason="no shipped model yet")
def test_int8_agrees_with_the_shipped_model_on_real_faces(datasets_dir, tmp_path):
    from gimefive_tf.data import load_arrays, read_dataset

    table = read_dataset(datasets_dir / "RAF-DB")
    faces, _ = load_arrays(table.subset(np.arange(0, len(table), 40)))  # 244 real faces
    assert export_main(["--out", str(tmp_path / "e"), "--formats", "tflite-int8,tflite-cam",
                        "--calibration-data", str(datasets_dir / "RAF-DB"), "--limit", "200"]) == 0
    model = load_model()
    expected = keras_probabilities(model, faces)
    int8 = TFLiteModel(tmp_path / "e" / "tflite" / "gimefive_int8.tflite")
    got = np.stack([int8(face)["probabilities"] for face in faces])
    assert (got.argmax(1) == expected.argmax(1)).mean() >= 0.97
    assert (tmp_path / "e" / "tflite" / "gimefive_int8.tflite").stat().st_size < 11.5 * 2 ** 20
    cam = TFLiteModel(tmp_path / "e" / "tflite" / "gimefive_cam.tflite")
    keras_maps = heatmaps(model, faces[:32], DEFAULT_METHOD, mirror=True)
    correlations = [np.corrcoef(cam(f)["heatmap"].ravel(), k.ravel())[0, 1]
                    for f, k in zip(faces[:32], keras_maps)]
    assert np.nanmean(correlations) >= 0.9


def test_bad_inputs_are_one_clear_line(exported, tmp_path, capsys):
    root, _ = exported
    (tmp_path / "fake.keras").write_text("not a model")
    (tmp_path / "empty").mkdir()
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a folder should be")
    cases = [
        (["--model", str(tmp_path / "fake.keras"), "--out", str(tmp_path / "o")],
         "is not a Keras model"),
        (["--model", str(root / "model.keras"), "--out", str(tmp_path / "o"), "--formats",
          "tflite-int8", "--calibration-data", str(tmp_path / "empty")], "cannot tell the layout"),
        (["--model", str(root / "model.keras"), "--out", str(tmp_path / "o"), "--formats",
          "tflite-int8"], "needs real faces"),
        (["--model", str(root / "model.keras"), "--out", str(blocked / "sub")], "cannot write"),
        (["--model", str(root / "model.keras"), "--out", str(root / "out"), "--formats",
          "savedmodel"], "already exist"),
    ]
    saved = root / "out" / "savedmodel" / "gimefive" / "1" / "saved_model.pb"
    before = (os.path.getmtime(saved), (root / "out" / "report.json").read_text())
    for args, message in cases:
        assert run_cli(export_main, args) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    # the refused export into an existing --out changed nothing there
    assert (os.path.getmtime(saved), (root / "out" / "report.json").read_text()) == before


def test_a_version_cut_short_is_replaced_without_overwrite(exported, tmp_path):
    """A killed export leaves a version folder without saved_model.pb: a rerun replaces it
    (a whole version, or an existing report, still needs --overwrite)."""
    root, _ = exported
    out = tmp_path / "out"
    cut_short = out / "savedmodel" / "gimefive" / "1"
    cut_short.mkdir(parents=True)
    (cut_short / "variables").mkdir()
    assert export_main(["--model", str(root / "model.keras"), "--out", str(out), "--formats",
                        "savedmodel", "--json"]) == 0
    assert (cut_short / "saved_model.pb").is_file()
    assert not list(cut_short.parent.glob(".*partial"))  # written aside, renamed into place


@pytest.mark.parametrize("method, layer, mirror", [
    ("layercam", "stage4_conv", False), ("layercam", "stage4_conv", True),
    ("gradcam", "stage5_conv", False), ("gradcam", "stage4_conv", True)])
def test_the_phone_backward_pass_equals_autodiff(exported, method, layer, mirror):
    """tflite-cam's backward pass in forward ops (ReLU masks, max pooling routed to each
    window's first maximum, transposed convolutions) gives autodiff's maps exactly, and both
    equal the explainers' maps of the same decision."""
    from gimefive_tf.export import analytic_cam, cam_in_graph

    _, model = exported
    pixels = tf.constant(np.random.default_rng(4).integers(0, 256, (3, 64, 64, 3)), tf.float32)
    phone_probabilities, phone = analytic_cam(model, pixels, method, layer, mirror)
    probabilities, graph = cam_in_graph(model, pixels, method, layer, mirror)
    np.testing.assert_allclose(phone.numpy(), graph.numpy(), atol=1e-5)
    np.testing.assert_allclose(phone_probabilities.numpy(), probabilities.numpy(), atol=1e-6)
    maps, _, library = make_explainer(model, method, layer, mirror=mirror).explain(pixels.numpy())
    np.testing.assert_allclose(graph.numpy(), maps, atol=1e-4)
    np.testing.assert_allclose(probabilities.numpy(), library, atol=1e-5)
