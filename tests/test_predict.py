import json
import os

import cv2
import numpy as np
import pytest

from fixtures import write_image
from gimefive_tf.cli import run_cli
from gimefive_tf.labels import EMOTIONS
from gimefive_tf.predict import main as predict_main




def test_default_input_is_a_real_face_found_and_cropped(model_path, tmp_path, capsys):
    assert predict_main(["--model", model_path, "--json", "--plot", str(tmp_path / "p.png")]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["input"] == "skimage:astronaut" and row["face"] == 0
    x, y, w, h = row["box"]
    assert 120 < x < 240 and 20 < y < 140 and 60 < w < 160  # the astronaut's face, not her suit
    assert list(row["scores"]) == list(EMOTIONS)
    assert sum(row["scores"].values()) == pytest.approx(1, abs=1e-3)
    assert row["emotion"] == max(row["scores"], key=row["scores"].get)
    assert (tmp_path / "p.png").stat().st_size > 5000


def test_folders_and_crop_modes(model_path, tmp_path, capsys):
    write_image(tmp_path / "faces" / "a.png", (64, 64, 3), seed=1)
    write_image(tmp_path / "faces" / "sub" / "b.jpg", (80, 60, 3), seed=2)
    assert predict_main(["--model", model_path, str(tmp_path / "faces"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["face"], r["emotion"], r["reason"]) for r in rows] == [
        (None, None, "no face found")] * 2                        # noise has no face: said so
    assert predict_main(["--model", model_path, str(tmp_path / "faces"), "--crop", "auto",
                         "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["reason"] for r in rows] == ["no face found: whole image"] * 2
    assert all(r["emotion"] in EMOTIONS for r in rows)
    assert predict_main(["--model", model_path, str(tmp_path / "faces"), "--crop", "none"]) == 0
    out = capsys.readouterr().out
    assert out.count("whole image") == 0 and len(out.strip().splitlines()) == 4


def test_a_folder_with_an_unreadable_file_is_reported_not_fatal(model_path, tmp_path, capsys):
    write_image(tmp_path / "a.png", (64, 64, 3), seed=1)
    (tmp_path / "broken.jpg").write_text("not an image")
    assert predict_main(["--model", model_path, str(tmp_path), "--crop", "none", "--json"]) == 0
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    assert [r["emotion"] is None for r in rows] == [False, True]
    assert captured.err.strip().splitlines() == [
        f"skipped {tmp_path / 'broken.jpg'}: {tmp_path / 'broken.jpg'} is not a readable image"]


@pytest.mark.parametrize("args, message", [
    (["/no/such.jpg"], "does not exist"),
    (["--plot", "x.png", "a", "b"], "--plot draws one image"),
])
def test_bad_inputs_are_one_line(model_path, capsys, args, message):
    assert run_cli(predict_main, ["--model", model_path] + args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_a_command_stderr_holds_its_own_lines_only(tmp_path):
    """TensorFlow's C++ start-up lines (absl, oneDNN, CUDA probing) are not shown; an error is
    the one line there is."""
    import subprocess
    import sys

    from skimage import data

    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    astronaut, huge = tmp_path / "astronaut.jpg", tmp_path / "huge.jpg"
    cv2.imwrite(str(astronaut), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(huge), np.full((10_000, 10_000, 3), 90, np.uint8))  # Pillow warns of it
    ok = subprocess.run([sys.executable, "-m", "gimefive_tf.predict", "--json", str(astronaut),
                         str(huge)], capture_output=True, text=True, env=env, timeout=300)
    assert ok.returncode == 0 and ok.stderr == ""
    records = json.loads(ok.stdout)
    assert [r["emotion"] for r in records] == ["happiness", None]
    bad = subprocess.run([sys.executable, "-m", "gimefive_tf.predict", str(tmp_path / "no.jpg")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert bad.returncode == 2
    assert bad.stderr.startswith(f"error: {tmp_path / 'no.jpg'} does not exist")
    assert bad.stderr.count("\n") == 1
