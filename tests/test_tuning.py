import io
import json
import os
import pathlib
import socket
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from fixtures import make_folders_dataset
from gimefive_tf.cli import run_cli
from gimefive_tf.errors import GiMeFiveError
from gimefive_tf.tune import main as tune_main
from gimefive_tf.tuning.space import HYPERPARAMETERS, SPACES_DIR, load_space, parse_fixed

TABLE4 = {
    "learning_rate": [0.01, 0.001, 0.0001], "batch_size": [8, 16, 32, 64], "dropout": [0.2, 0.5],
    "conv_depth": [4, 5, 6], "fc_depth": [2, 3], "batch_norm": [True, False],
    "pooling": ["max", "avg"], "optimizer": ["adam", "sgd"],
    "activation": ["relu", "tanh", "elu", "gelu"], "epochs": [30, 40, 50, 70, 100],
    "early_stopping": [True, False], "patience": [5, 10],
}
QUICK = ["--val-split", "0.4", "--epochs", "1", "--fix", "conv_depth=4", "--fix", "batch_size=8",
         "--fix", "fc_depth=2"]


def test_table4_yaml_is_exactly_the_papers_space():
    assert load_space(SPACES_DIR / "table4.yaml") == TABLE4
    final = load_space(SPACES_DIR / "table4_final.yaml")
    assert final["fc_depth"] == [1, 2, 3] and final["optimizer"] == ["adam", "sgd", "adamw"]
    assert final["activation"] == ["relu"] and final["epochs"] == [10, 20, 40, 80]
    assert final["patience"] == [5, 10, 15] and set(final) == set(HYPERPARAMETERS)


@pytest.mark.parametrize("text, message", [
    ("learning_rate: [0.1]\ncolour: [red]\n", "line 2: unknown hyperparameter 'colour'"),
    ("dropout: []\n", "line 1: dropout needs a non-empty list"),
    ("pooling: [max, min]\n", "line 1: pooling choice 'min' is not one of max, avg"),
    ("batch_size: [8, 8.5]\n", "batch_size choice 8.5 is not a int"),
])
def test_bad_spaces_name_the_file_and_line(tmp_path, text, message):
    (tmp_path / "space.yaml").write_text(text)
    with pytest.raises(GiMeFiveError, match=message) as info:
        load_space(tmp_path / "space.yaml")
    assert str(tmp_path / "space.yaml") in str(info.value)


def test_fix_pins_are_checked():
    assert parse_fixed(["optimizer=sgd", "batch_norm=false"], TABLE4) == {
        "optimizer": "sgd", "batch_norm": False}
    with pytest.raises(GiMeFiveError, match="activation choice 'swish'"):
        parse_fixed(["activation=swish"], TABLE4)


@pytest.fixture
def dataset(tmp_path):
    make_folders_dataset(tmp_path / "faces", per_class=5, split_dirs=None)
    return str(tmp_path / "faces")


def test_quick_search_then_extend_it(dataset, tmp_path, capsys):
    out = str(tmp_path / "search")
    broken = pathlib.Path(dataset) / "Happy" / "broken.png"
    broken.write_text("not a picture")  # left out, and said so
    assert run_cli(tune_main, ["--data", dataset, "--max-trials", "2", "--out", out, "--json"]
                   + QUICK) == 0
    first = pd.read_csv(f"{out}/trials.csv")
    assert len(first) == 2 and (first["status"] == "COMPLETED").all()
    for name, choices in TABLE4.items():
        assert set(first[name]) <= set(choices), name
    assert set(first["conv_depth"]) == {4} and (first["epochs_run"] == 1).all()
    for name in ("best.keras", "best_hyperparameters.yaml", "trials.png"):
        assert (tmp_path / "search" / name).exists()
    best = yaml.safe_load((tmp_path / "search" / "best_hyperparameters.yaml").read_text())
    assert best["conv_depth"] == 4
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["best_hyperparameters"]["epochs"] == 1  # what ran under --epochs 1
    assert summary["skipped"] == 1 and summary["skipped_images"][0][0] == str(broken)
    assert f"skipped {broken}: not a readable image" in captured.err
    assert run_cli(tune_main, ["--data", dataset, "--max-trials", "3", "--out", out] + QUICK) == 0
    extended = pd.read_csv(f"{out}/trials.csv")
    assert len(extended) == 3
    pd.testing.assert_frame_equal(extended.iloc[:2][list(TABLE4)], first[list(TABLE4)])


def test_bad_options_are_one_line(dataset, tmp_path, capsys):
    assert run_cli(tune_main, ["--data", dataset, "--fix", "colour=red", "--out",
                               str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--fix 'colour=red'" in err[0]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_chief_and_two_workers_share_a_search(dataset, tmp_path):
    out = str(tmp_path / "search")
    command = [sys.executable, "-m", "gimefive_tf.tune", "--data", dataset, "--max-trials", "4",
               "--out", out] + QUICK
    base = {**os.environ, "KERASTUNER_ORACLE_IP": "127.0.0.1",
            "KERASTUNER_ORACLE_PORT": str(_free_port())}
    chief = subprocess.Popen(command, env={**base, "KERASTUNER_TUNER_ID": "chief"},
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    workers = [subprocess.Popen(command, env={**base, "KERASTUNER_TUNER_ID": f"tuner{i}"},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for i in range(2)]
    try:
        for worker in workers:
            assert worker.wait(timeout=400) == 0
        stdout, _ = chief.communicate(timeout=120)
    finally:
        for process in [chief, *workers]:
            process.kill()
    assert chief.returncode == 0 and "4 trials" in stdout
    trials = pd.read_csv(f"{out}/trials.csv")
    assert len(trials) == 4 and (trials["status"] == "COMPLETED").all()
    assert set(trials["worker"]) == {"tuner0", "tuner1"}


@pytest.mark.parametrize("oracle", ["grid", "random", "bayesian", "hyperband"])
def test_every_oracle_builds_a_tuner(oracle, dataset, tmp_path):
    from gimefive_tf.data import read_dataset, stratified_split
    from gimefive_tf.tuning.hypermodel import GiMeFiveHyperModel
    from gimefive_tf.tuning.search import make_tuner

    train, val = stratified_split(read_dataset(dataset), 0.4)
    space = {"learning_rate": [0.01, 0.001], "fc_depth": [2, 3]}
    hypermodel = GiMeFiveHyperModel(space, train, val, {"conv_depth": 3}, epochs_cap=1)
    tuner = make_tuner(oracle, hypermodel, tmp_path / oracle, max_trials=2, seed=0, max_epochs=3)
    assert tuner.oracle.max_trials == 2
    names = set(tuner.oracle.hyperparameters.values)
    assert {"learning_rate", "fc_depth", "conv_depth"} <= names


def test_the_trial_bar_advances_once_per_finished_trial(dataset, tmp_path):
    from tqdm import tqdm

    from gimefive_tf.data import read_dataset, stratified_split
    from gimefive_tf.tuning.hypermodel import GiMeFiveHyperModel
    from gimefive_tf.tuning.search import make_tuner

    train, val = stratified_split(read_dataset(dataset), 0.4)
    hypermodel = GiMeFiveHyperModel({"learning_rate": [0.01, 0.001]}, train, val,
                                    {"conv_depth": 3, "batch_size": 8}, epochs_cap=1)
    tuner = make_tuner("random", hypermodel, tmp_path / "search", max_trials=2, seed=0)
    tuner.trial_bar = tqdm(total=2, file=io.StringIO())
    tuner.search(verbose=0)
    assert tuner.trial_bar.n == 2 and "best_val_accuracy" in tuner.trial_bar.postfix
