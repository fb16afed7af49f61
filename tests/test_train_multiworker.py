"""Training spread over workers (`--distribution multi-worker`, MultiWorkerMirroredStrategy from
TF_CONFIG) and over local devices (`mirrored`): two worker processes on localhost train a short
epoch, only the chief writes the run directory, and the same command resumes it."""

import json
import os
import socket
import subprocess
import sys

import keras
import pandas as pd
import pytest
import yaml

from fixtures import make_folders_dataset
from gimefive_tf.cli import run_cli
from gimefive_tf.layers import Preprocess
from gimefive_tf.train import main as train_main
from test_train import TINY

RUN_FILES = {"config.yaml", "best.keras", "last.keras", "history.csv", "curves.png",
             "skipped_images.csv", "tensorboard"}


@pytest.fixture
def dataset(tmp_path):
    make_folders_dataset(tmp_path / "faces", per_class=4, split_dirs=None)  # 18 train, 6 val
    return str(tmp_path / "faces")


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def run_workers(args, temporary_dirs, timeout=240, own_args=((), ())):
    """`python -m gimefive_tf.train ARGS` (plus each worker's `own_args`) as workers 0 (the
    chief) and 1 of a localhost cluster, CPU only, each with its own TMPDIR; [(exit code,
    stdout, stderr)] in that order. Both are killed at the end, so a hung collective fails the
    test instead of hanging it."""
    cluster = {"worker": [f"localhost:{port}" for port in free_ports(2)]}
    processes = []
    for index, (temporary, own) in enumerate(zip(temporary_dirs, own_args)):
        temporary.mkdir(exist_ok=True)
        tf_config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "CUDA_VISIBLE_DEVICES": "",
               "TMPDIR": str(temporary)}
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "gimefive_tf.train", *args, *own, "--distribution",
             "multi-worker", "--verbose", "0"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True))
    try:
        outputs = [process.communicate(timeout=timeout) for process in processes]
        return [(process.returncode, *output) for process, output in zip(processes, outputs)]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()


def test_two_workers_train_one_epoch_then_resume(dataset, tmp_path):
    out = tmp_path / "run"
    temporary = [tmp_path / "tmp-chief", tmp_path / "tmp-worker"]
    command = TINY + ["--data", dataset, "--out", str(out)]
    for code, stdout, stderr in run_workers(command + ["--epochs", "1"], temporary):
        assert code == 0 and stderr == "", stderr[-3000:]
        assert stdout.startswith(f"run {out}: best val_accuracy")  # the worker names it too
    assert {path.name for path in out.iterdir()} == RUN_FILES  # the chief's, and no .lock
    assert yaml.safe_load((out / "config.yaml").read_text())["distribution"] == "multi-worker"
    first = pd.read_csv(out / "history.csv")
    assert first["epoch"].tolist() == [1]
    best = keras.saving.load_model(out / "best.keras", safe_mode=True)
    assert best.input_shape == (None, 32, 32, 3)
    assert isinstance(best.get_layer("preprocess"), Preprocess)  # the inference model
    # --batch-size is the global batch: 18 images in batches of 8 are 3 steps, 4 images per
    # worker each; per-worker batches of 8 would have made 2
    last = keras.saving.load_model(out / "last.keras", safe_mode=True)
    assert int(last.optimizer.iterations.numpy()) == 3
    assert [list(folder.iterdir()) for folder in temporary] == [[], []]  # worker copies gone

    for code, _, stderr in run_workers(command + ["--epochs", "2"], temporary):
        assert code == 0 and stderr == "", stderr[-3000:]
    history = pd.read_csv(out / "history.csv")
    assert history["epoch"].tolist() == [1, 2]
    pd.testing.assert_frame_equal(history.iloc[:1], first)
    last = keras.saving.load_model(out / "last.keras", safe_mode=True)
    assert int(last.optimizer.iterations.numpy()) == 6
    assert [list(folder.iterdir()) for folder in temporary] == [[], []]


def test_workers_that_see_different_runs_stop_with_one_line(dataset, tmp_path):
    """The chief's --out holds a finished epoch, the worker's is empty (no shared folder):
    both refuse at once instead of waiting for each other in different collectives."""
    out = tmp_path / "run"
    command = TINY + ["--data", dataset, "--verbose", "0"]
    assert run_cli(train_main, command + ["--out", str(out), "--epochs", "1"]) == 0
    temporary = [tmp_path / "tmp-chief", tmp_path / "tmp-worker"]
    results = run_workers(command + ["--epochs", "2"], temporary, timeout=180,
                          own_args=(["--out", str(out)], ["--out", str(tmp_path / "other")]))
    for code, _, stderr in results:
        lines = stderr.strip().splitlines()
        assert code == 2 and len(lines) == 1, stderr[-3000:]
        assert "do not see the same run in --out" in lines[0]
    assert pd.read_csv(out / "history.csv")["epoch"].tolist() == [1]  # nothing trained


def test_mirrored_records_its_distribution_and_resumes_under_another(dataset, tmp_path):
    out = tmp_path / "run"
    command = TINY + ["--data", dataset, "--out", str(out), "--verbose", "0"]
    assert run_cli(train_main, command + ["--epochs", "1", "--distribution", "mirrored"]) == 0
    assert yaml.safe_load((out / "config.yaml").read_text())["distribution"] == "mirrored"
    assert run_cli(train_main, command + ["--epochs", "2"]) == 0  # how it is spread may change
    assert yaml.safe_load((out / "config.yaml").read_text())["distribution"] == "none"
    assert pd.read_csv(out / "history.csv")["epoch"].tolist() == [1, 2]


@pytest.mark.parametrize("tf_config, message", [
    (None, "reads the cluster from the TF_CONFIG environment variable, which is not set"),
    ("{cluster: [", "TF_CONFIG is not valid JSON"),
    ('{"cluster": {"ps": ["localhost:1"]}, "task": {"type": "ps", "index": 0}}',
     'TF_CONFIG needs "cluster": {"worker": [host:port, ...]}'),
    ('{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": 1}}',
     'TF_CONFIG needs "task": {"type": "worker", "index": I}'),
])
def test_a_bad_tf_config_is_one_clear_line(dataset, tmp_path, capsys, monkeypatch, tf_config,
                                           message):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    out = tmp_path / "run"
    assert run_cli(train_main, TINY + ["--data", dataset, "--out", str(out),
                                       "--distribution", "multi-worker"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
    assert not out.exists()


def test_batches_that_would_leave_a_replica_empty_are_found():
    from gimefive_tf.training.run import _replica_batch_size

    assert _replica_batch_size(18, 8, 2) == 8  # 8, 8, 2: every batch splits over 2
    assert _replica_batch_size(17, 8, 2) == 7  # 8, 8, 1 would not; 7, 7, 3 would
    assert _replica_batch_size(17, 8, 1) == 8  # one replica takes any batch
    assert _replica_batch_size(6, 256, 2) == 256
    assert _replica_batch_size(1, 256, 2) is None
