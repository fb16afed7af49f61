import csv

import cv2
import numpy as np
import pytest

from gimefive_tf.cli import run_cli
from gimefive_tf.data.__main__ import main as data_main
from gimefive_tf.faces import detect_faces


def detectable_faces(datasets_dir, count):
    """Real RAF-DB faces that the default detector finds once scaled onto a 320x240 background."""
    faces = []
    for path in sorted((datasets_dir / "RAF-DB" / "train").glob("*.jpg")):
        face = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        if detect_faces(on_background(face), turned=False):  # as `data frames` searches
            faces.append(face)
        if len(faces) == count:
            return faces
    pytest.skip("not enough detectable faces")


def on_background(face):
    canvas = np.full((240, 320, 3), 90, np.uint8)
    canvas[40:200, 80:240] = cv2.resize(face, (160, 160))
    return canvas


def write_video(path, frames, fps=10):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (320, 240))
    for frame in frames:
        writer.write(np.ascontiguousarray(frame[..., ::-1]))
    writer.release()


@pytest.mark.data
def test_extract_frames_keeps_faces_and_counts_empty_frames(datasets_dir, tmp_path, capsys):
    import json

    first, second = detectable_faces(datasets_dir, 2)
    blank = np.full((240, 320, 3), 90, np.uint8)
    frames = [on_background(first)] * 6 + [blank] * 4 + [on_background(second)] * 6
    write_video(tmp_path / "clip.avi", frames)
    assert data_main(["extract-frames", str(tmp_path / "clip.avi"), "--out", str(tmp_path / "x"),
                      "--every", "2", "--label", "Happy", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["frames_read"] == 8
    assert result["frames_without_face"] >= 2 and result["written"] >= 5
    rows = list(csv.reader(open(tmp_path / "x" / "frames_labels.csv")))
    assert rows[0] == ["file", "label"] and len(rows) - 1 == result["written"]
    assert {row[1] for row in rows[1:]} == {"0"}
    crop = cv2.imread(str(tmp_path / "x" / rows[1][0]))
    assert crop.shape == (64, 64, 3)
    # the output folder is never reused
    assert run_cli(data_main, ["extract-frames", str(tmp_path / "clip.avi"), "--out",
                               str(tmp_path / "x")]) == 2


def test_extract_frames_bad_video_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    assert run_cli(data_main, ["extract-frames", str(tmp_path / "junk.mp4"), "--out",
                               str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot read" in err[0]
    assert not (tmp_path / "o").exists()


@pytest.mark.data
def test_scene_crops_are_the_pipelines_own_crops_of_each_face(datasets_dir, tmp_path, capsys):
    """`data scene-crops`: every face shown in a compressed picture and cut back out by the
    face pipeline, written losslessly with its label, the source faces named beside them."""
    import json

    from gimefive_tf.data import load_arrays, read_dataset
    from gimefive_tf.data.scene_crops import scene_crops
    from gimefive_tf.faces import FaceCropper

    source = datasets_dir / "RAF-DB" / "train_RAF_labels.csv"
    rows = [row for row in csv.reader(open(source))][:12]
    labels_csv = tmp_path / "few.csv"
    labels_csv.write_text("".join(f"{datasets_dir / 'RAF-DB' / 'train' / name},{label}\n"
                                  for name, label in rows + rows[:1]))  # one row twice
    out = tmp_path / "crops"
    assert data_main(["scene-crops", str(labels_csv), "--out", str(out), "--seed", "5",
                      "--with-source", "--drop-duplicates", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["faces"] == 12 and result["source_rows"] == 12
    assert result["written"] == 12 and result["not_found"] == 0
    written = list(csv.reader(open(out / "scenes_labels.csv")))[1:]
    assert len(written) == result["written"] + 12
    assert written[-12:] == [[str(datasets_dir / "RAF-DB" / "train" / name), label]
                             for name, label in rows]
    faces, labels = load_arrays(read_dataset(labels_csv).without_duplicates(), 64)
    # the same crop the pipeline's cropper cuts from the same picture, pixel for pixel
    expected = dict(scene_crops(faces, FaceCropper(turned=False), seed=5))
    for name, label in written[:-12]:
        index = int(name.split("/")[1].split("_")[0])
        assert label == str(labels[index])
        crop = cv2.cvtColor(cv2.imread(str(out / name)), cv2.COLOR_BGR2RGB)
        np.testing.assert_array_equal(crop, expected[index])
        # the face itself, framed like the training face
        gray = [cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(float).ravel()
                for image in (crop, faces[index])]
        assert np.corrcoef(*gray)[0, 1] > 0.5, name
    table = read_dataset(out / "scenes_labels.csv")  # one DATA with both, as training reads it
    assert len(table) == len(written)
    # each face's picture depends on the seed and its row only: a set can be made in parts
    later = dict(scene_crops(faces[6:], FaceCropper(turned=False), seed=5, start=6))
    assert sorted(later) == list(range(6, 12))
    assert all((later[i] is None and expected[i] is None) or np.array_equal(later[i], expected[i])
               for i in later)
    assert run_cli(data_main, ["scene-crops", str(labels_csv), "--out", str(out)]) == 2
    # a folder of training and validation CSVs: which faces may be shown is asked, not guessed
    split = tmp_path / "split"
    assert data_main(["split", str(labels_csv), "--out", str(split), "--drop-duplicates"]) == 0
    capsys.readouterr()
    assert run_cli(data_main, ["scene-crops", str(split), "--out", str(tmp_path / "s")]) == 2
    assert "--split" in capsys.readouterr().err and not (tmp_path / "s").exists()
