import csv
import json

import numpy as np
import pytest

from fixtures import make_folders_dataset, write_corrupt_files, write_image
from gimefive_tf.cli import run_cli
from gimefive_tf.evaluate import classification_report, confusion_matrix
from gimefive_tf.evaluate.__main__ import main as evaluate_main
from gimefive_tf.labels import EMOTIONS
from gimefive_tf.models import create_model
from gimefive_tf.scores import HEADER, main as scores_main


@pytest.fixture(scope="module")
def tiny_model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    create_model("gimefive", input_size=32, conv_depth=3, base_filters=8).save(path)
    return str(path)


def test_confusion_matrix_and_report_match_hand_computation():
    labels = np.array([0, 0, 0, 1, 1, 2, 3, 4, 5, 5])
    predictions = np.array([0, 0, 1, 1, 2, 2, 3, 3, 5, 0])
    probabilities = np.full((10, 6), 0.02)
    probabilities[np.arange(10), predictions] = 0.9
    expected = np.zeros((6, 6), int)
    for t, p in [(0, 0), (0, 0), (0, 1), (1, 1), (1, 2), (2, 2), (3, 3), (4, 3), (5, 5), (5, 0)]:
        expected[t, p] += 1
    assert confusion_matrix(labels, predictions).tolist() == expected.tolist()
    report = classification_report(labels, probabilities)
    assert report["confusion"] == expected.tolist()
    assert report["accuracy"] == pytest.approx(0.6)
    happiness = report["per_class"]["happiness"]
    assert happiness["precision"] == pytest.approx(2 / 3) and happiness["recall"] == pytest.approx(2 / 3)
    assert happiness["support"] == 3
    assert report["per_class"]["disgust"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0,
                                              "support": 1}
    f1 = {"happiness": 2 / 3, "surprise": 0.5, "sadness": 2 / 3, "anger": 2 / 3, "disgust": 0,
          "fear": 2 / 3}
    assert report["macro_f1"] == pytest.approx(np.mean(list(f1.values())))
    assert report["confusion_normalized"][0] == pytest.approx([2 / 3, 1 / 3, 0, 0, 0, 0], abs=1e-4)
    # all confidences 0.9 (after normalising the rows they are 0.9/1.0), accuracy 0.6: ECE = 0.3
    assert report["ece"] == pytest.approx(0.3)


def test_evaluate_cli_json_files_and_several_datasets(tmp_path, tiny_model_path, capsys):
    make_folders_dataset(tmp_path / "a", per_class=2, split_dirs=None)
    make_folders_dataset(tmp_path / "b", per_class=1, split_dirs=None)
    assert evaluate_main(["--model", tiny_model_path, "--data", str(tmp_path / "a"),
                          "--data", str(tmp_path / "b"), "--out", str(tmp_path / "r"),
                          "--json"]) == 0
    reports = json.loads(capsys.readouterr().out)
    assert [r["images"] for r in reports] == [12, 6]
    for report in reports:
        assert set(report) >= {"accuracy", "macro_f1", "per_class", "confusion", "ece"}
        assert np.array(report["confusion"]).sum() == report["images"]
        assert list(report["per_class"]) == list(EMOTIONS)
    for name in ("confusion.csv", "confusion_normalized.csv", "confusion.png", "reliability.png",
                 "per_class.csv", "metrics.json"):
        assert (tmp_path / "r" / "a" / name).exists()
    # a second run into the same folder refuses instead of overwriting
    assert run_cli(evaluate_main, ["--model", tiny_model_path, "--data", str(tmp_path / "a"),
                                   "--out", str(tmp_path / "r" / "a")]) == 2
    assert "nothing was overwritten" in capsys.readouterr().err


def test_evaluate_bad_model_is_one_line(tmp_path, capsys):
    make_folders_dataset(tmp_path / "a", per_class=1, split_dirs=None)
    assert run_cli(evaluate_main, ["--model", str(tmp_path / "none.keras"),
                                   "--data", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: model {tmp_path / 'none.keras'} does not exist"]


def test_scores_csv_is_the_papers_table3(tmp_path, tiny_model_path, capsys):
    for i, name in enumerate(["b/2.png", "a/1.jpg", "c.bmp", "a/deep/3.png"]):
        write_image(tmp_path / "photos" / name, (40, 30, 3), seed=i)
    write_corrupt_files(tmp_path / "photos" / "bad")
    out = tmp_path / "scores.csv"
    assert scores_main([str(tmp_path / "photos"), "--model", tiny_model_path, "--out",
                        str(out)]) == 0
    captured = capsys.readouterr()
    assert "4 images scored" in captured.out and "3 skipped" in captured.out
    assert captured.err.count("skipped ") == 3
    rows = list(csv.reader(open(out)))
    assert tuple(rows[0]) == HEADER
    paths = [row[0] for row in rows[1:]]
    assert paths == sorted(paths) and len(paths) == 4
    for row in rows[1:]:
        values = [float(v) for v in row[1:]]
        assert all(len(v.split(".")[1]) == 2 for v in row[1:])
        assert sum(values) == pytest.approx(1.0, abs=0.03)
    assert run_cli(scores_main, [str(tmp_path / "photos"), "--model", tiny_model_path,
                                 "--out", str(out)]) == 2
