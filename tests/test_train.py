import json
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pandas as pd
import pytest
import yaml

from fixtures import make_folders_dataset
from gimefive_tf.cli import run_cli
from gimefive_tf.train import main as train_main
from gimefive_tf.training import HISTORY_COLUMNS

TINY = ["--architecture", "gimefive", "--option", "input_size=32", "--option", "conv_depth=3",
        "--option", "base_filters=8", "--batch-size", "8", "--val-split", "0.25"]


@pytest.fixture
def dataset(tmp_path):
    make_folders_dataset(tmp_path / "faces", per_class=4, split_dirs=None)  # 24 images
    return str(tmp_path / "faces")


def run_train(args, capsys=None):
    code = run_cli(train_main, args + ["--verbose", "0"])
    return code


def test_run_directory_holds_everything(dataset, tmp_path, capsys):
    out = tmp_path / "run"
    assert run_train(TINY + ["--data", dataset, "--test-data", dataset, "--epochs", "2",
                             "--seed", "5", "--out", str(out)]) == 0
    assert "best val_accuracy" in capsys.readouterr().out
    for name in ("config.yaml", "best.keras", "last.keras", "history.csv", "curves.png",
                 "skipped_images.csv", "tensorboard"):
        assert (out / name).exists(), name
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["seed"] == 5 and config["optimizer"] == "sgd" and config["momentum"] == 0.9
    assert config["weight_decay"] == 1e-4 and config["patience"] == 15
    history = pd.read_csv(out / "history.csv")
    assert list(history.columns) == list(HISTORY_COLUMNS)
    assert history["epoch"].tolist() == [1, 2]
    assert history["test_accuracy"].notna().all() and (history["images_per_second"] > 0).all()
    assert history["learning_rate"].tolist() == pytest.approx([1e-3, 1e-3])
    best = keras.saving.load_model(out / "best.keras", safe_mode=True)
    assert best.name == "gimefive" and best.input_shape == (None, 32, 32, 3)
    # an inference model: no optimizer state, so about half the size of last.keras
    assert (out / "best.keras").stat().st_size < 0.7 * (out / "last.keras").stat().st_size


def test_rerun_resumes_without_duplicating_history(dataset, tmp_path):
    out = str(tmp_path / "run")
    assert run_train(TINY + ["--data", dataset, "--epochs", "1", "--out", out]) == 0
    assert run_train(TINY + ["--data", dataset, "--epochs", "3", "--out", out]) == 0
    history = pd.read_csv(f"{out}/history.csv")
    assert history["epoch"].tolist() == [1, 2, 3]
    last = keras.saving.load_model(f"{out}/last.keras", safe_mode=True)
    assert int(last.optimizer.iterations.numpy()) == 3 * 3  # 18 training images, batch 8
    # finished runs stay finished
    assert run_train(TINY + ["--data", dataset, "--epochs", "3", "--out", out]) == 0
    assert pd.read_csv(f"{out}/history.csv")["epoch"].tolist() == [1, 2, 3]


def test_killed_run_loses_at_most_the_current_epoch(dataset, tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "gimefive_tf.train", *TINY, "--data", dataset,
               "--epochs", "6", "--out", str(out), "--verbose", "0"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None:
        if (out / "history.csv").exists() and len(pd.read_csv(out / "history.csv")) >= 2:
            break
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = pd.read_csv(out / "history.csv")["epoch"].tolist()
    assert done and done == list(range(1, len(done) + 1))
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    history = pd.read_csv(out / "history.csv")
    assert history["epoch"].tolist() == list(range(1, 7))


def test_a_different_config_is_refused_not_overwritten(dataset, tmp_path, capsys):
    out = str(tmp_path / "run")
    assert run_train(TINY + ["--data", dataset, "--epochs", "1", "--out", out]) == 0
    before = (tmp_path / "run" / "history.csv").read_text()
    assert run_train(TINY + ["--data", dataset, "--epochs", "1", "--out", out,
                             "--learning-rate", "0.1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: ") and "learning_rate: 0.001 -> 0.1" in err
    assert (tmp_path / "run" / "history.csv").read_text() == before
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    assert run_train(TINY + ["--data", dataset, "--out", str(tmp_path / "mine")]) == 2
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_early_stopping_on_validation_accuracy(dataset, tmp_path, capsys):
    out = str(tmp_path / "run")
    assert run_train(TINY + ["--data", dataset, "--epochs", "10", "--patience", "2",
                             "--learning-rate", "0", "--out", out, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    # with a zero learning rate nothing improves after epoch 1: stop after 1 + patience epochs
    assert summary["epochs_run"] == 3 and summary["stopped_early"] is True
    assert summary["best_epoch"] == 1


def test_config_file_options_with_command_line_overrides(dataset, tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({
        "data": dataset, "model": "gimefive", "epochs": 1, "batch_size": 8, "val_split": 0.25,
        "optimizer": "adamw", "label_smoothing": 0.1, "class_weights": True, "schedule": "cosine",
        "model_options": {"input_size": 32, "conv_depth": 3, "base_filters": 8},
        "augment": {"flip": True, "mixup": 0.2}}))
    out = tmp_path / "run"
    assert run_train(["--config", str(config), "--seed", "3", "--out", str(out), "--json"]) == 0
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["optimizer"] == "adamw" and saved["seed"] == 3
    assert saved["augment"] == {"flip": True, "mixup": 0.2}
    best = keras.saving.load_model(out / "best.keras", safe_mode=True)
    assert not any(layer.name.startswith("aug") for layer in best.layers)


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "--epochs: 0 must be at least 1"),
    (["--lr", "nan"], "nan is not a finite number"),
    (["--init-from", "/etc/hostname"], "is not a .keras file"),
    (["--model", "gimefive"], "to build a new 'gimefive', pass --architecture gimefive"),
    (["--option", "conv_depth=9"], "conv_depth=9"),
    (["--augment", "spin=1"], "unknown augment option"),
    (["--config", "/nonexistent.yaml"], "does not exist"),
    (["--teacher", "/nonexistent.keras"], "does not exist"),
    (["--teacher", "rafdb"], "takes 64x64 images"),  # the model trained here takes 32x32
    (["--teacher", "rafdb", "--teacher-weight", "0.6", "--class-weights"],
     "class_weights needs teacher_weight <= 0.5"),
    (["--teacher", "rafdb", "--teacher-weight", "1.5"], "1.5 must be at most 1"),
    (["--teacher-weight", "0.5"], "--teacher-weight needs at least one --teacher"),
])
def test_bad_options_are_one_clear_line(dataset, tmp_path, capsys, args, message):
    assert run_train(TINY + ["--data", dataset, "--out", str(tmp_path / "r")] + args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
    assert not (tmp_path / "r").exists()


def make_separable_set(root, per_class=10):
    """Class k: a bright horizontal band in the k-th sixth of a dark noisy 32x32 image."""
    rng = np.random.default_rng(0)
    for label in range(6):
        for i in range(per_class):
            image = rng.integers(0, 60, (32, 32, 3)).astype(np.uint8)
            top = label * 5
            image[top:top + 4] = rng.integers(200, 256, (4, 32, 3))
            write_image_array(root / str(label) / f"{i}.png", image)


def write_image_array(path, rgb):
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]))


def test_the_loop_really_learns_a_separable_set(tmp_path, capsys):
    from gimefive_tf.data import load_arrays, read_dataset
    from gimefive_tf.evaluate import classification_report
    from gimefive_tf.inference import Predictor
    from gimefive_tf.loading import load_model

    make_separable_set(tmp_path / "bands")
    out = tmp_path / "run"
    assert run_train(TINY + ["--data", str(tmp_path / "bands"), "--optimizer", "adam",
                             "--learning-rate", "0.003", "--epochs", "25", "--patience", "25",
                             "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["best_val_accuracy"] >= 0.9
    model = load_model(out / "best.keras")
    images, labels = load_arrays(read_dataset(tmp_path / "bands"), image_size=32)
    report = classification_report(labels, Predictor(model, 16)(images))
    assert report["accuracy"] >= 0.95


def test_random_layers_are_reseeded_from_seed_and_epoch():
    from gimefive_tf.models import create_model
    from gimefive_tf.training import reseed_layers

    model = create_model("gimefive", input_size=32, conv_depth=3, base_filters=8)
    states = lambda m: [v.numpy().tolist() for v in m.non_trainable_variables
                        if v.path.endswith("seed_generator_state")]
    assert len(states(model)) == 3  # two stage dropouts and the head dropout
    reseed_layers(model, seed=4, epoch=7)
    first = states(model)
    other = create_model("gimefive", input_size=32, conv_depth=3, base_filters=8)
    reseed_layers(other, seed=4, epoch=7)
    assert states(other) == first
    reseed_layers(other, seed=4, epoch=8)
    assert states(other) != first


def test_a_diverging_run_stops_with_an_error_and_saves_nothing_of_it(dataset, tmp_path, capsys):
    out = tmp_path / "run"
    assert run_train(TINY + ["--data", dataset, "--epochs", "3", "--out", str(out),
                             "--learning-rate", "1e30"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: training diverged: the loss became") and "epoch 1" in err
    assert not (out / "best.keras").exists() and not (out / "last.keras").exists()
    assert not (out / ".lock").exists()


def test_a_run_directory_in_use_is_refused(dataset, tmp_path, capsys):
    import os

    out = tmp_path / "run"
    assert run_train(TINY + ["--data", dataset, "--epochs", "1", "--out", str(out)]) == 0
    (out / ".lock").write_text(str(os.getppid()))  # a live process holds it
    assert run_train(TINY + ["--data", dataset, "--epochs", "2", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (f"error: {out} is in use: process {os.getppid()} is training in it; wait "
                   "for it or pass another --out")
    (out / ".lock").write_text("999999999")  # left by a process that is gone: taken over
    assert run_train(TINY + ["--data", dataset, "--epochs", "2", "--out", str(out)]) == 0
    assert pd.read_csv(out / "history.csv")["epoch"].tolist() == [1, 2]


def test_model_means_a_trained_model_to_start_from(dataset, tmp_path, capsys):
    """--model is a .keras file or a shipped name in train as everywhere; --architecture builds."""
    first = tmp_path / "first"
    assert run_train(TINY + ["--data", dataset, "--epochs", "1", "--out", str(first)]) == 0
    second = tmp_path / "second"
    assert run_train(TINY + ["--data", dataset, "--epochs", "1", "--out", str(second),
                             "--model", str(first / "best.keras")]) == 0
    saved = yaml.safe_load((second / "config.yaml").read_text())
    assert saved["init_from"] == str(first / "best.keras") and saved["model"] == "gimefive"


def test_a_rerun_with_more_epochs_stretches_the_cosine(dataset, tmp_path):
    """The cosine restored from last.keras would end where the first run's --epochs said; a
    rerun with a new --epochs decays over the new length instead."""
    out = str(tmp_path / "run")
    cosine = TINY + ["--data", dataset, "--schedule", "cosine", "--lr", "0.01", "--out", out]
    assert run_train(cosine + ["--epochs", "1"]) == 0
    assert run_train(cosine + ["--epochs", "4"]) == 0
    rates = pd.read_csv(f"{out}/history.csv")["learning_rate"].tolist()
    steps = 3  # 18 training images, batch 8
    expected = [0.005 * (1 + np.cos(np.pi * epoch * steps / (4 * steps))) for epoch in (2, 3)]
    assert rates[1:3] == pytest.approx(expected, abs=1e-6)  # logged after each epoch


def test_ema_scores_and_keeps_the_average_and_resumes_from_the_trained_weights(dataset, tmp_path):
    """--ema: validation and best.keras use the moving average of the weights; last.keras keeps
    the trained weights (and the average, in its optimizer) so a rerun resumes exactly."""
    from gimefive_tf.data import load_arrays, read_dataset, stratified_split
    from gimefive_tf.training.recipe import inference_part
    from gimefive_tf.training.run import evaluate_logits

    out = tmp_path / "run"
    args = TINY + ["--data", dataset, "--ema", "0.5", "--lr", "0.05", "--augment", "flip=true",
                   "--out", str(out)]
    assert run_train(args + ["--epochs", "1"]) == 0
    assert yaml.safe_load((out / "config.yaml").read_text())["ema"] == 0.5
    best = keras.saving.load_model(out / "best.keras", safe_mode=True)
    last = keras.saving.load_model(out / "last.keras", safe_mode=True)
    assert last.optimizer.use_ema and last.optimizer.ema_momentum == 0.5
    averages = [v.numpy() for v in last.optimizer.variables if v.path.endswith("_average")]
    trained = [v.numpy() for v in last.trainable_weights]
    assert len(averages) == len(trained) == len(best.trainable_weights)
    for saved, average, raw in zip(best.trainable_weights, averages, trained):
        np.testing.assert_array_equal(saved.numpy(), average)
    assert any(not np.allclose(a, r) for a, r in zip(averages, trained))
    _, validation = stratified_split(read_dataset(dataset), 0.25, seed=0)
    images, labels = load_arrays(validation, image_size=32)
    loss, accuracy = evaluate_logits(best, [(images, labels)])
    raw_loss, _ = evaluate_logits(inference_part(last), [(images, labels)])
    logged = pd.read_csv(out / "history.csv").iloc[0]
    assert (logged["val_loss"], logged["val_accuracy"]) == pytest.approx((loss, accuracy),
                                                                         rel=1e-4)
    assert abs(raw_loss - loss) > 1e-3  # the trained weights would have logged another loss
    assert run_train(args + ["--epochs", "2"]) == 0
    resumed = keras.saving.load_model(out / "last.keras", safe_mode=True)
    assert int(resumed.optimizer.iterations.numpy()) == 2 * 3 and resumed.optimizer.use_ema


def test_ema_momentum_must_be_below_one(dataset, tmp_path, capsys):
    assert run_train(TINY + ["--data", dataset, "--ema", "1", "--out", str(tmp_path / "r")]) == 2
    assert "--ema" in capsys.readouterr().err


def test_a_run_written_before_an_option_existed_resumes_with_its_default(dataset, tmp_path):
    out = tmp_path / "run"
    args = TINY + ["--data", dataset, "--out", str(out)]
    assert run_train(args + ["--epochs", "1"]) == 0
    config = yaml.safe_load((out / "config.yaml").read_text())
    del config["ema"]  # as an older version wrote it
    (out / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    assert run_train(args + ["--epochs", "2"]) == 0
    assert pd.read_csv(out / "history.csv")["epoch"].tolist() == [1, 2]
    assert run_train(args + ["--epochs", "2", "--ema", "0.9"]) == 2  # a real change is refused


def test_distillation_trains_on_the_teachers_blend_and_resumes_on_the_same(dataset, tmp_path,
                                                                          capsys, monkeypatch):
    """--teacher: each training image's target is (1 - W) * its label + W * the teachers' mean
    mirror-averaged probabilities, scored once and kept in the run for a resume."""
    from gimefive_tf import data
    from gimefive_tf.data import load_arrays, read_dataset, stratified_split
    from gimefive_tf.inference import Predictor
    from gimefive_tf.training.teachers import PROBABILITIES_FILE, distillation_targets

    teachers = []
    for seed in ("1", "2"):
        assert run_train(TINY + ["--data", dataset, "--epochs", "1", "--seed", seed,
                                 "--out", str(tmp_path / f"teacher{seed}")]) == 0
        teachers.append(str(tmp_path / f"teacher{seed}" / "best.keras"))
    teachers[1] = str(tmp_path / "teacher2" / "last.keras")  # a training model works too
    out = tmp_path / "student"
    args = TINY + ["--data", dataset, "--teacher", teachers[0], "--teacher", teachers[1],
                   "--teacher-weight", "0.25", "--out", str(out), "--json"]
    streamed = []  # the targets fit trains on
    real_stream = data.training_stream

    def spy(*arguments, targets=None, **options):
        streamed.append(targets)
        return real_stream(*arguments, targets=targets, **options)

    monkeypatch.setattr(data, "training_stream", spy)
    capsys.readouterr()
    assert run_train(args + ["--epochs", "1"]) == 0
    summary = json.loads(capsys.readouterr().out)
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["teachers"] == teachers and saved["teacher_weight"] == 0.25
    train_table, _ = stratified_split(read_dataset(dataset), 0.25, seed=0)
    images, labels = load_arrays(train_table, image_size=32)
    expected = np.mean([Predictor(keras.saving.load_model(path, safe_mode=True), mirror=True)(
        images) for path in teachers], axis=0)
    probabilities = np.load(out / PROBABILITIES_FILE)
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    np.testing.assert_allclose(streamed[0], distillation_targets(labels, probabilities, 0.25))
    assert summary["teachers_train_accuracy"] == pytest.approx(
        np.mean(expected.argmax(1) == labels), abs=1e-4)
    written = (out / PROBABILITIES_FILE).stat().st_mtime_ns
    (tmp_path / "teacher1" / "best.keras").rename(tmp_path / "moved.keras")
    assert run_train(args + ["--epochs", "2"]) == 0  # resumes on the kept probabilities,
    assert (out / PROBABILITIES_FILE).stat().st_mtime_ns == written  # without the teachers
    assert pd.read_csv(out / "history.csv")["epoch"].tolist() == [1, 2]
    assert run_train(args[:-1] + ["--teacher-weight", "0.5", "--epochs", "2"]) == 2  # refused


def test_distillation_targets_blend_labels_and_probabilities():
    from gimefive_tf.training.teachers import distillation_targets

    probabilities = np.array([[0.5, 0.5, 0, 0, 0, 0], [0, 0, 0, 0, 0.2, 0.8]], np.float32)
    targets = distillation_targets([1, 5], probabilities, 0.25)
    np.testing.assert_allclose(targets, [[0.125, 0.875, 0, 0, 0, 0],
                                         [0, 0, 0, 0, 0.05, 0.95]], atol=1e-7)
