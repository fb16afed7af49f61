import csv
import json
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from gimefive_tf.cli import run_cli
from gimefive_tf.video import CSV_HEADER
from gimefive_tf.video.__main__ import main as video_main
from test_frames import detectable_faces, on_background, write_video




def scene(faces, size=(240, 320), grey=90):
    """A grey frame with the given faces pasted side by side at 110 px."""
    frame = np.full((*size, 3), grey, np.uint8)
    for i, face in enumerate(faces):
        x = 30 + i * 150
        frame[60:170, x:x + 110] = cv2.resize(face, (110, 110))
    return frame


@pytest.fixture(scope="module")
def clip(datasets_dir, tmp_path_factory):
    first, second = detectable_faces(datasets_dir, 2)
    frames = [scene([first])] * 8 + [scene([])] * 6 + [scene([first, second])] * 8
    path = tmp_path_factory.mktemp("v") / "clip.avi"
    write_video(path, frames)
    return path


@pytest.mark.data
def test_annotated_video_csv_and_summary(clip, model_path, tmp_path, capsys):
    out = tmp_path / "annotated.mp4"
    assert video_main([str(clip), "--model", model_path, "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == 22 and not summary["interrupted"]
    rows = list(csv.DictReader(open(tmp_path / "annotated.csv")))
    assert tuple(rows[0]) == CSV_HEADER
    frames = [int(r["frame"]) for r in rows]
    single = {f for f in frames if f < 8}
    assert len(single) >= 6                                   # most face frames detected
    assert not any(8 <= f < 14 for f in frames)               # none on empty frames
    pair = [f for f in frames if f >= 14]
    assert max(collections_count(pair).values()) == 2         # two faces in the last segment
    for row in rows:
        assert abs(sum(float(row[e]) for e in CSV_HEADER[-6:]) - 1) < 1e-3
    capture = cv2.VideoCapture(str(out))
    count = 0
    while capture.read()[0]:
        count += 1
    assert count == 22
    assert (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (320, 240)
    assert (tmp_path / "annotated.png").exists()


@pytest.mark.data
def test_a_cut_to_a_new_shot_starts_every_face_afresh(datasets_dir, model_path):
    """Another face in the last shot's place after a cut is a new face: a new id, and scores
    smoothed from its own frames only (not the last shot's face's)."""
    from gimefive_tf.analyze import FacePipeline
    from gimefive_tf.video import VideoAnalyzer

    first, second = detectable_faces(datasets_dir, 2)
    pipeline = FacePipeline(model_path, explain=None, batch_size=4, mirror=False)
    analyzer = VideoAnalyzer(pipeline)
    shot, next_shot = scene([first]), scene([second], grey=200)
    assert {face_id for _ in range(3) for face_id, *_ in analyzer(shot)} == {1}
    [(face_id, _, probabilities, *_)] = analyzer(next_shot)
    [(_, _, alone, *_)] = VideoAnalyzer(pipeline)(next_shot)
    assert face_id == 2 and np.allclose(probabilities, alone)
    assert [face_id for face_id, *_ in analyzer(next_shot)] == [2]  # the same shot goes on


@pytest.mark.data
def test_a_face_only_mtcnn_sees_is_found_while_no_face_is_followed(datasets_dir, model_path):
    """A frame searched while no face is followed gets MTCNN's own search when BlazeFace finds
    nothing (once every `search_every` frames, as a photo gets it once): a face BlazeFace
    misses, short-range and full-range alike, is found."""
    from gimefive_tf.analyze import FacePipeline
    from gimefive_tf.faces import Box, detect_faces, iou
    from gimefive_tf.video import VideoAnalyzer

    path = datasets_dir / "RAF-DB" / "train" / "train_00043_aligned_surprise.jpg"
    if not path.exists():
        pytest.skip("the RAF-DB face this test reads is not there")
    frame = on_background(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))
    assert detect_faces(frame, thorough=False, turned=False) == []  # BlazeFace's search
    analyzer = VideoAnalyzer(FacePipeline(model_path, explain=None, batch_size=4, mirror=False))
    [(face_id, box, *_)] = analyzer(frame)
    assert face_id == 1 and iou(box, Box(80, 40, 160, 160)) > 0.5


def collections_count(values):
    import collections

    return collections.Counter(values)


def test_video_without_faces_is_fine(tmp_path, model_path, capsys):
    write_video(tmp_path / "empty.avi", [np.full((240, 320, 3), 90, np.uint8)] * 5)
    assert video_main([str(tmp_path / "empty.avi"), "--model", model_path]) == 0
    assert "5 frames, no faces found" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["nothing.mp4"], "does not exist"),
    (["--camera", "7"], "camera 7 is not available"),
    ([], "pass a video file or --camera N"),
    (["x.mp4", "--show"], "--show needs OpenCV with a GUI"),
])
def test_bad_sources_are_one_line(args, message, model_path, capsys):
    assert run_cli(video_main, args + ["--model", model_path]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_unreadable_video_is_a_clear_error(tmp_path, model_path, capsys):
    (tmp_path / "junk.mp4").write_bytes(b"\x00" * 1000)
    assert run_cli(video_main, [str(tmp_path / "junk.mp4"), "--model", model_path]) == 2
    assert "cannot read" in capsys.readouterr().err


@pytest.mark.data
def test_ctrl_c_leaves_a_playable_video(datasets_dir, model_path, tmp_path):
    (face,) = detectable_faces(datasets_dir, 1)
    write_video(tmp_path / "long.avi", [scene([face])] * 4000)   # ~40 s at 100 frames/s
    out = tmp_path / "partial.mp4"
    process = subprocess.Popen([sys.executable, "-m", "gimefive_tf.video", str(tmp_path / "long.avi"),
                                "--model", model_path, "--out", str(out), "--json"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (tmp_path / "partial.csv").exists():
        time.sleep(0.2)
    time.sleep(3)
    process.send_signal(signal.SIGINT)
    stdout, _ = process.communicate(timeout=120)
    assert process.returncode == 0
    summary = json.loads(stdout)
    assert summary["interrupted"] and 0 < summary["frames"] < 4000
    capture = cv2.VideoCapture(str(out))
    played = 0
    while capture.read()[0]:
        played += 1
    assert played == summary["frames"]


def test_mtcnn_detector_finds_the_demo_face():
    from skimage import data

    from gimefive_tf.faces import detect_faces

    boxes = detect_faces(data.astronaut(), "mtcnn")
    assert boxes and 150 < boxes[0].x + boxes[0].w / 2 < 260 and boxes[0].score > 0.9
