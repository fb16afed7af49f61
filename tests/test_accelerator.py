"""accelerator/: the pack -> train (Keras on JAX, no TensorFlow) -> weight files -> .keras path
that lent GPU machines use, run here end to end on a few real faces."""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "accelerator"


def load_script(name):
    spec = importlib.util.spec_from_file_location(f"accelerator_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rafdb_pack(datasets_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("pack") / "rafdb.npz"
    subprocess.run([sys.executable, str(SCRIPTS / "pack_data.py"),
                    str(datasets_dir / "RAF-DB"), str(path)], check=True, capture_output=True)
    return path


@pytest.mark.data
def test_pack_holds_the_model_cards_validation_split(rafdb_pack, datasets_dir):
    from gimefive_tf.data import read_dataset, stratified_split

    train, validation = stratified_split(read_dataset(datasets_dir / "RAF-DB"), 0.1, seed=0)
    pack = np.load(rafdb_pack)
    assert pack["is_validation"].sum() == len(validation) == 974
    assert (~pack["is_validation"]).sum() == len(train) == 8773
    expected = [os.path.basename(p) for p in validation.frame["source"]]
    assert list(pack["names"][pack["is_validation"]]) == expected
    assert list(pack["labels"][pack["is_validation"]]) == list(validation.labels)
    offsets = pack["offsets"]
    assert offsets[0] == 0 and np.all(np.diff(offsets) > 0)
    assert len(offsets) == len(pack["labels"]) + 1
    first = pack["encoded"][offsets[0]:offsets[1]].tobytes()
    assert first[:2] == b"\xff\xd8"  # a JPEG, as it was on disk
    again = subprocess.run([sys.executable, str(SCRIPTS / "pack_data.py"),
                            str(datasets_dir / "RAF-DB"), str(rafdb_pack)],
                           capture_output=True, text=True)
    assert again.returncode == 2 and again.stderr.strip().endswith("exists; choose another path")


def test_model_code_loads_without_the_tensorflow_parts_of_the_package():
    """The model, augmentation and the training recipe (TrainConfig, compile_for_training,
    distillation targets, the mirror-averaged Predictor) load and run on JAX without
    TensorFlow."""
    pytest.importorskip("jax")
    code = ("import sys; sys.path.insert(0, 'accelerator'); import train_on_gpu as t; "
            "code = t.import_model_code(); m = code.build_gimefive(); "
            "code.compile_for_training(m, code.TrainConfig(data='x'), None); "
            "code.Predictor(m, mirror=True)(__import__('numpy').zeros((2, 64, 64, 3))); "
            "print(sum(int(w.numpy().size) for w in m.trainable_weights)); "
            "print(sorted(n for n in sys.modules if n.startswith('gimefive_tf'))); "
            "print('tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True, env={**os.environ, "KERAS_BACKEND": "jax"})
    assert result.returncode == 0, result.stderr[-2000:]
    count, modules, tensorflow = result.stdout.strip().splitlines()[-3:]
    assert int(count) == 10_478_086
    assert "gimefive_tf.loading" not in modules and "gimefive_tf.data.pipeline" not in modules
    assert tensorflow == "False"


def test_weight_files_round_trip_into_a_keras_model(tmp_path):
    from gimefive_tf.models import create_model

    trainer, importer = load_script("train_on_gpu"), load_script("import_weights")
    model = create_model("gimefive")
    trainer.save_weights(model, str(tmp_path / "run.npz"))
    parts = trainer.export_weights(str(tmp_path / "run.npz"), str(tmp_path), "run")
    assert len(parts) == 2 and all(os.path.getsize(p) < 16 * 2**20 for p in parts)
    images = np.random.default_rng(0).integers(0, 256, (8, 64, 64, 3)).astype("uint8")
    rebuilt = importer.build_with_weights(parts)
    expected = model.predict(images, verbose=0)
    np.testing.assert_allclose(rebuilt.predict(images, verbose=0), expected, atol=2e-3)
    with pytest.raises(ValueError, match="run run has 2 parts, 1 given"):
        importer.build_with_weights(parts[:1])
    other = trainer.export_weights(str(tmp_path / "run.npz"), str(tmp_path), "other")
    with pytest.raises(ValueError, match="different runs"):
        importer.build_with_weights([parts[0], other[1]])


@pytest.mark.data
def test_a_budgeted_run_on_jax_trains_saves_and_imports(rafdb_pack, tmp_path):
    """One RAF-DB job, 64 faces, a 1-second budget (so one epoch): the jitted step with every
    augmentation runs under JAX, the best epoch is saved, and the exported weights loaded into
    TensorFlow give the JAX run's own validation probabilities."""
    pytest.importorskip("jax")
    data = tmp_path / "data"
    data.mkdir()
    os.symlink(rafdb_pack, data / "rafdb.npz")
    out = tmp_path / "out"
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    subprocess.run([sys.executable, str(SCRIPTS / "train_on_gpu.py"), "--data", str(data),
                    "--out", str(out), "--budget", "1", "--grace", "400", "--limit", "64",
                    "--allow-cpu", "--only", "raf-t1", "--work", str(tmp_path / "work")],
                   check=True, env=env, timeout=600)
    results = json.loads((out / "results.json").read_text())
    run = results["runs"]["raf-t1"]
    assert run["backend"] == "jax" and run["jit_compile"] is True and run["final"] is True
    assert run["epochs"] == 1 and run["train_images"] == 64 and run["val_images"] == 64
    assert run["best_logged_val_accuracy"] == pytest.approx(run["val_accuracy"], abs=1e-6)
    assert results["files"] == {"raf-t1": ["raf-t1.part0.npz", "raf-t1.part1.npz"]}

    trainer, importer = load_script("train_on_gpu"), load_script("import_weights")
    model = importer.build_with_weights([str(out / f) for f in results["files"]["raf-t1"]])
    _, _, images, labels = trainer.load_pack(str(rafdb_pack), limit=64)
    assert labels.tolist() == run["val_labels"]
    jax_probs = np.load(tmp_path / "work" / "raf-t1.val_probs.npy")[0]
    ours = keras.ops.convert_to_numpy(keras.ops.softmax(model.predict(images, verbose=0)))
    np.testing.assert_allclose(ours, jax_probs, atol=2e-3)
