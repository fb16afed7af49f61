"""The on-device bundle and its reference pipeline: what an app developer takes away from
`export --formats mobile`, run as a phone runs it (LiteRT, numpy, Pillow) and as MediaPipe
Tasks' ImageClassifier reads it, against the library's face pipeline."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from gimefive_tf.analyze import FacePipeline
from gimefive_tf.export.__main__ import main as export_main
from gimefive_tf.labels import EMOTIONS
from gimefive_tf.ondevice import OnDevicePipeline, read_spec
from gimefive_tf.ondevice.pipeline import find_faces

MAX_BUNDLE_MB = 12
# Run before anything else in a child process: importing TensorFlow, Keras or OpenCV fails.
BLOCKER = textwrap.dedent("""
    import importlib.abc, runpy, sys
    class Blocked(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("tensorflow", "keras", "tf_keras", "cv2"):
                raise ImportError(name + " is not on this phone")
    sys.meta_path.insert(0, Blocked())
    sys.argv[0] = "gimefive-ondevice"
    runpy.run_module("gimefive_tf.ondevice", run_name="__main__")
""")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """The shipped model's bundle, exported once for this module."""
    out = tmp_path_factory.mktemp("mobile") / "export"
    assert export_main(["--out", str(out), "--formats", "mobile", "--limit", "8",
                        "--json"]) == 0
    return out / "mobile"


@pytest.fixture(scope="module")
def on_device(bundle):
    return OnDevicePipeline(bundle)


def run_on_device(*args):
    return subprocess.run([sys.executable, "-c", BLOCKER, *map(str, args)], capture_output=True,
                          text=True, timeout=300)


def test_the_bundle_is_whole_small_and_self_describing(bundle):
    names = sorted(p.name for p in bundle.iterdir())
    assert names == ["LICENSES.md", "emotions.tflite", "face_detector.tflite", "labels.txt",
                     "pipeline.json"]
    size = sum(p.stat().st_size for p in bundle.iterdir())
    assert size <= MAX_BUNDLE_MB * 2 ** 20
    assert (bundle / "labels.txt").read_text().split() == list(EMOTIONS)
    spec = read_spec(bundle)
    assert spec["labels"] == list(EMOTIONS)
    assert spec["detector"]["file"] == "face_detector.tflite"
    assert spec["classifier"]["file"] == "emotions.tflite" and spec["classifier"]["mirror"]
    assert spec["framing"]["how"] == "eyes" and len(spec["framing"]["template"]) == 4
    assert 0 < spec["lighting"]["std"] < 128 and spec["detector"]["min_score"] == 0.7
    assert [step["step"] for step in spec["desktop_only"]][0] == "second opinions"
    assert b"TFL3" in (bundle / "emotions.tflite").read_bytes()[:8]
    assert b"labels.txt" in (bundle / "emotions.tflite").read_bytes()  # packed in its metadata


def test_mediapipe_image_classifier_reads_the_model_as_keras_decides(bundle, datasets_dir,
                                                                       tmp_path):
    """MediaPipe Tasks' own ImageClassifier (the API of Android, iOS and web apps) on held-out
    aligned faces: top-1 equal to the Keras model's mirror-averaged decision on >= 99%."""
    from gimefive_tf.data import load_arrays, read_dataset, stratified_split
    from gimefive_tf.inference import Predictor
    from gimefive_tf.loading import load_model

    _, validation = stratified_split(read_dataset(datasets_dir / "RAF-DB"), 0.1, seed=0)
    faces, _ = load_arrays(validation.sample(200, seed=3), 64)
    np.save(tmp_path / "faces.npy", faces)
    script = textwrap.dedent(f"""
        import json, numpy as np, mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision
        options = vision.ImageClassifierOptions(
            base_options=BaseOptions(model_asset_path={str(bundle / "emotions.tflite")!r}),
            max_results=6)
        classifier = vision.ImageClassifier.create_from_options(options)
        rows = []
        for face in np.load({str(tmp_path / "faces.npy")!r}):
            result = classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB,
                                                  data=np.ascontiguousarray(face)))
            head = result.classifications[0]
            rows.append([head.head_name, head.categories[0].category_name,
                         len(result.classifications)])
        classifier.close()
        print(json.dumps(rows))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads(done.stdout.strip().splitlines()[-1])
    assert {(head, heads) for head, _, heads in rows} == {("probabilities", 2)}
    keras = Predictor(load_model(), mirror=True)(faces).argmax(1)
    agreement = np.mean([label == EMOTIONS[k] for (_, label, _), k in zip(rows, keras)])
    assert agreement >= 0.99, agreement


def test_the_reference_pipeline_runs_without_tensorflow_keras_or_opencv(bundle, tmp_path):
    from skimage import data
    from PIL import Image

    Image.fromarray(data.astronaut()).save(tmp_path / "astronaut.png")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not a picture")
    done = run_on_device(bundle, tmp_path / "astronaut.png", tmp_path / "broken.jpg", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    records = json.loads(done.stdout)
    assert done.stderr.strip() == f"skipped {tmp_path / 'broken.jpg'}: " \
        f"{tmp_path / 'broken.jpg'} is not a readable image"
    faces = [r for r in records if r["box"] is not None]
    assert len(faces) == 1 and faces[0]["emotion"] == "happiness"
    assert set(faces[0]["scores"]) == set(EMOTIONS) and len(faces[0]["landmarks"]) == 4
    library = [r.to_dict() for r in FacePipeline(second_opinions=False)(data.astronaut())]
    x, y, w, h = library[0]["box"]
    assert abs(faces[0]["box"][0] - x) <= 2 and abs(faces[0]["box"][2] - w) <= 2
    assert records[1] == {"input": str(tmp_path / "broken.jpg"), "face": None, "box": None,
                          "emotion": None, "scores": None,
                          "reason": f"{tmp_path / 'broken.jpg'} is not a readable image"}


@pytest.mark.parametrize("args, words", [
    (["nowhere", "x.jpg"], "not an on-device bundle"),
    ([], "the following arguments are required"),
])
def test_bad_bundles_are_one_clear_line(args, words):
    done = run_on_device(*args)
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and words in done.stderr


@pytest.mark.data
def test_the_reference_pipeline_follows_the_library_phone_search(bundle, on_device, photos_dir):
    """The same specification on both sides: on real photographs given as the same pixels, the
    same faces (boxes at IoU >= 0.95: OpenCV resizes and interpolates in fixed point, so eyes
    can lie 0.3 px apart), crops within 2 levels on average of the library's (a wrong framing
    or lighting is far off), and the same emotions as the library's Keras model on all but one
    face."""
    from gimefive_tf.faces import detect_faces, frame_face, iou
    from gimefive_tf.pictures import read_picture

    library = FacePipeline(second_opinions=False)
    names = sorted(p.name for p in photos_dir.glob("*.jpg"))[::4]
    faces = differ = 0
    for name in names:
        picture = read_picture(photos_dir / name)
        theirs = detect_faces(picture, second_opinions=False)
        ours = find_faces(on_device.detector, picture, on_device.spec)
        assert len(theirs) == len(ours), name
        for box, face in zip(theirs, ours):
            assert iou(box, face) >= 0.95, name
            crop, _ = frame_face(picture, box, library.framing, library.how)
            mine, _ = on_device.crop(picture, face)
            gaps = np.abs(crop.astype(int) - mine)
            assert gaps.mean() <= 2, (name, gaps.mean())  # a wrong framing or light: >> 10
        records = [r.to_dict() for r in library(picture)]
        mine = on_device.records(picture)
        faces += len(mine)
        differ += sum(a["emotion"] != b["emotion"] for a, b in zip(records, mine))
    assert faces >= len(names) and differ <= 1


def test_an_upside_down_picture_is_searched_turned_and_reported_in_its_own_pixels(on_device):
    from skimage import data

    upright = on_device.records(data.astronaut())
    turned = on_device.records(np.ascontiguousarray(data.astronaut()[::-1, ::-1]))
    assert len(turned) == 1 and turned[0]["angle"] == 180.0
    x, y, w, h = upright[0]["box"]
    height, width = data.astronaut().shape[:2]
    assert abs(turned[0]["box"][0] - (width - x - w)) <= 3
    assert abs(turned[0]["box"][1] - (height - y - h)) <= 3
    assert turned[0]["emotion"] == upright[0]["emotion"]


def test_a_model_the_bundle_cannot_write_out_is_one_clear_line(tmp_path):
    from gimefive_tf.models import create_model

    create_model("gimefive_res", base_filters=4).save(tmp_path / "res.keras")
    done = subprocess.run([sys.executable, "-m", "gimefive_tf.export", "--model",
                           str(tmp_path / "res.keras"), "--out", str(tmp_path / "out"),
                           "--formats", "mobile"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stderr.startswith("error: the on-device bundle writes "
                                                           "GiMeFive-style models only")
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "out" / "mobile").exists()
