"""`python -m gimefive_tf.batch` on Beam's DirectRunner: the rows `scores` gives the same files
(|dp| < 1e-4, with and without the face crop), videos as frames, dead letters, Parquet, and the
command-line conventions."""

import csv
import glob
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pandas as pd
import pytest

from fixtures import write_image
from gimefive_tf.analyze import demo_image
from gimefive_tf.batch import main as batch_main
from gimefive_tf.cli import run_cli
from gimefive_tf.labels import EMOTIONS
from gimefive_tf.scores import main as scores_main
from test_frames import write_video


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Random pictures (no face) in three formats and a sub-folder, a real face (scikit-image's
    astronaut), a text file wearing .png, and a 6-frame clip of the face moving."""
    root = tmp_path_factory.mktemp("inputs")
    for seed, name in enumerate(["noise.png", "noise.jpg", "sub/noise.bmp"]):
        write_image(root / name, (40 + 10 * seed, 50, 3), seed=seed)
    _, astronaut = demo_image()
    cv2.imwrite(str(root / "astronaut.png"), astronaut[..., ::-1])
    (root / "notes.png").write_text("not an image")
    face = cv2.resize(astronaut[20:300, 120:360], (120, 140))
    frames = []
    for index in range(6):
        frame = np.full((240, 320, 3), 80, np.uint8)
        frame[50:190, 60 + 5 * index:180 + 5 * index] = face
        frames.append(frame)
    write_video(root / "clip.avi", frames)
    return root


def read_shards(folder, name):
    files = sorted(glob.glob(str(folder / f"{name}-*")))
    assert files, f"no {name} shards in {folder}"
    if files[0].endswith(".parquet"):
        return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    return pd.concat([pd.read_csv(f, keep_default_na=False) for f in files], ignore_index=True)


@pytest.fixture(scope="module")
def crop_none_scores(inputs, tmp_path_factory):
    return scores_of(inputs, tmp_path_factory.mktemp("scores"))


def scores_of(path, tmp_path, *options):
    out = tmp_path / "scores.csv"
    assert scores_main([str(path), "--out", str(out), "--digits", "6", *options]) == 0
    return {tuple(row[:-6]): np.array(row[-6:], float)
            for row in list(csv.reader(open(out)))[1:]}


def assert_rows_equal_scores(images, expected):
    assert sorted(images.input) == sorted(name for name, in expected)  # one row per image
    for _, row in images.iterrows():
        assert np.abs(row[list(EMOTIONS)].to_numpy(float) - expected[(row.input,)]).max() < 1e-4
        assert row.emotion == EMOTIONS[int(expected[(row.input,)].argmax())]


def test_crop_none_rows_equal_scores(inputs, crop_none_scores, tmp_path, capsys):
    out = tmp_path / "rows"
    # a Beam option before the INPUT keeps its value (Beam's own parser splits the flags)
    assert batch_main(["--runner", "DirectRunner", str(inputs), "--out", str(out),
                       "--crop", "none", "--every", "3", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    rows = read_shards(out, "rows")
    assert_rows_equal_scores(rows[rows.frame == ""], crop_none_scores)
    frames = rows[rows.frame != ""]
    assert set(frames.input) == {str(inputs / "clip.avi")}
    assert sorted(frames.frame.astype(int)) == [0, 3]
    dead = read_shards(out, "dead_letter")
    assert list(dead.input) == [str(inputs / "notes.png")]
    assert "not a readable image" in dead.reason[0]
    assert summary["rows"] == len(rows) == 6 and summary["dead_letters"] == 1
    assert summary["inputs"] == 6 and summary["pictures"] == 6
    assert sorted(summary["files"]) == sorted(glob.glob(str(out / "*")))
    # the folder is never reused without --overwrite
    assert run_cli(batch_main, [str(inputs), "--out", str(out)]) == 2
    assert "nothing was overwritten" in capsys.readouterr().err


def test_faces_in_parquet_equal_scores_with_a_clean_stderr(inputs, tmp_path):
    out = tmp_path / "rows"
    result = subprocess.run(
        [sys.executable, "-m", "gimefive_tf.batch", str(inputs), "--out", str(out),
         "--format", "parquet", "--every", "3", "--json"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stderr == ""
    summary = json.loads(result.stdout)
    rows = read_shards(out, "rows")
    photos, frames = rows[rows.frame.isna()], rows[rows.frame.notna()]
    expected = scores_of(inputs, tmp_path, "--crop", "face")
    assert {(r.input, int(r.face), int(r.x), int(r.y), int(r.w), int(r.h))
            for r in photos.itertuples()} == {(k[0], *map(int, k[1:])) for k in expected}
    for row in photos.itertuples():
        key = (row.input, *(str(int(getattr(row, c))) for c in ("face", "x", "y", "w", "h")))
        assert np.abs(np.array([getattr(row, e) for e in EMOTIONS]) - expected[key]).max() < 1e-4
    # a video frame is analysed as the same picture saved as a photo would be
    capture = cv2.VideoCapture(str(inputs / "clip.avi"))
    still = tmp_path / "frame0"
    still.mkdir()
    cv2.imwrite(str(still / "frame0.png"), capture.read()[1])
    capture.release()
    (key, probabilities), = scores_of(still, tmp_path, "--crop", "face", "--overwrite").items()
    first = frames[frames.frame == 0].iloc[0]
    assert [int(first[c]) for c in ("face", "x", "y", "w", "h")] == list(map(int, key[1:]))
    assert np.abs(first[list(EMOTIONS)].to_numpy(float) - probabilities).max() < 1e-4
    assert sorted(frames.frame.astype(int)) == [0, 3]
    dead = read_shards(out, "dead_letter").set_index("input").reason.to_dict()
    assert "not a readable image" in dead.pop(str(inputs / "notes.png"))
    assert set(dead.values()) == {"no face found"} and len(dead) == 3
    assert summary["photos_without_face"] == 3 and summary["rows"] == len(rows) == 3


def test_an_exported_savedmodel_gives_the_same_rows(inputs, crop_none_scores, tmp_path, capsys):
    from gimefive_tf.export import export_savedmodel
    from gimefive_tf.loading import load_model

    export_savedmodel(load_model(), tmp_path / "savedmodel" / "gimefive" / "1", None, 64)
    assert batch_main([str(inputs), "--out", str(tmp_path / "rows"), "--crop", "none",
                       "--model", str(tmp_path / "savedmodel" / "gimefive"), "--every", "6"]) == 0
    assert "5 rows from 5 pictures of 6 files" in capsys.readouterr().out
    rows = read_shards(tmp_path / "rows", "rows")
    assert_rows_equal_scores(rows[rows.frame == ""], crop_none_scores)


@pytest.mark.parametrize("arguments, message", [
    (["{inputs}/missing.png"], "missing.png does not exist"),
    (["{inputs}/*.xyz"], "matches no file"),
    (["{inputs}", "--direct_num_workers", "two"], "Beam pipeline option: argument "
                                                  "--direct_num_workers: invalid int value"),
    (["{inputs}", "--runer", "DirectRunner"], "unrecognized arguments: --runer"),
    (["{inputs}", "--model", "{inputs}/notes.png"], "is not a .keras file"),
    (["gs://bucket/faces/*.jpg"], "no Beam file system reads gs:// here"),
    (["{inputs}", "--runner", "Foo"], "--runner Foo: ValueError: Unexpected pipeline runner"),
])
def test_bad_input_is_one_error_line(inputs, tmp_path, capsys, arguments, message):
    arguments = [a.format(inputs=inputs) for a in arguments] + ["--out", str(tmp_path / "o")]
    assert run_cli(batch_main, arguments) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_a_link_to_nowhere_is_a_dead_letter_and_an_empty_folder_an_error(tmp_path, capsys):
    """Beam's listing skips what it cannot stat; the folder's own listing names it."""
    folder = tmp_path / "photos"
    folder.mkdir()
    write_image(folder / "noise.png", (40, 50, 3))
    (folder / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    out = tmp_path / "rows"
    assert batch_main([str(folder), "--out", str(out), "--crop", "none"]) == 0
    assert list(read_shards(out, "rows").input) == [str(folder / "noise.png")]
    dead = read_shards(out, "dead_letter")
    assert list(dead.input) == [str(folder / "gone.jpg")] and "link to nowhere" in dead.reason[0]
    (tmp_path / "empty").mkdir()
    capsys.readouterr()
    assert run_cli(batch_main, [str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.strip() == f"error: no images or videos in {tmp_path / 'empty'}"


def test_help_loads_neither_beam_nor_tensorflow():
    code = ("import sys, contextlib, io\n"
            "from gimefive_tf.batch import main\n"
            "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
            "    main(['--help'])\n"
            "print('apache_beam' in sys.modules, 'tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.stdout.split() == ["False", "False"]


@pytest.mark.data
def test_accuracy_of_rows_equals_evaluate(datasets_dir, tmp_path, capsys):
    from gimefive_tf.evaluate.__main__ import main as evaluate_main

    labels = pd.read_csv(datasets_dir / "RAF-DB" / "train_RAF_labels.csv", header=None,
                         names=["file", "label"]).sample(300, random_state=0)
    for row in labels.itertuples():
        folder = tmp_path / "faces" / EMOTIONS[row.label]
        folder.mkdir(parents=True, exist_ok=True)
        os.symlink(datasets_dir / "RAF-DB" / "train" / row.file, folder / row.file)
    assert batch_main([str(tmp_path / "faces"), "--out", str(tmp_path / "rows"),
                       "--crop", "none", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 300
    rows = read_shards(tmp_path / "rows", "rows")
    truth = rows.input.map(lambda path: os.path.basename(os.path.dirname(path)))
    accuracy = float((rows.emotion == truth).mean())
    assert evaluate_main([str(tmp_path / "faces"), "--json"]) == 0
    assert accuracy == pytest.approx(json.loads(capsys.readouterr().out)["accuracy"], abs=1e-9)


def test_a_progress_bar_counts_every_input_file(inputs, tmp_path, monkeypatch, capsys):
    """On the DirectRunner the pipeline runs in the command's process, so its progress bar
    moves once per file read: all six, dead letters included."""
    import gimefive_tf.batch as batch

    bars = []

    class Bar:
        def __init__(self, iterable, description, total=None, file=None):
            self.description, self.total, self.done, self.closed = description, total, 0, False
            bars.append(self)

        def update(self, count=1):
            self.done += count

        def close(self):
            self.closed = True

    monkeypatch.setattr(batch, "progress", Bar)
    assert batch_main([str(inputs), str(inputs / "astronaut.png"), "--out", str(tmp_path / "r"),
                       "--crop", "none", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["inputs"] == 6
    assert [(bar.description, bar.total, bar.done, bar.closed) for bar in bars] == \
        [("files", 6, 6, True)]
