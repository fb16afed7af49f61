"""The on-device bundle and its reference pipeline: what an app developer takes away from
`export --formats mobile`, run as a phone runs it (LiteRT, numpy, Pillow) and as MediaPipe
Tasks' ImageClassifier reads it, against the library's face pipeline."""

import contextlib
import json
import os
import pathlib
import shutil
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
def exported(tmp_path_factory):
    """The shipped model's bundle and web app, exported once for this module (the app when
    LiteRT.js is installed: the README's first command installs it)."""
    from gimefive_tf.export.webapp import check_runtime
    from gimefive_tf.errors import GiMeFiveError

    out = tmp_path_factory.mktemp("mobile") / "export"
    try:
        check_runtime()
        formats = "mobile,web"
    except GiMeFiveError:
        formats = "mobile"
    assert export_main(["--out", str(out), "--formats", formats, "--limit", "8",
                        "--json"]) == 0
    return out


@pytest.fixture(scope="module")
def bundle(exported):
    return exported / "mobile"


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


def test_a_broken_bundle_is_one_clear_line(bundle, tmp_path):
    """A specification cut short and a model file that is no model: one line each, no
    traceback, before any picture is read."""
    short, garbled = tmp_path / "short", tmp_path / "garbled"
    for copy in (short, garbled):
        shutil.copytree(bundle, copy)
    spec = json.loads((short / "pipeline.json").read_text())
    del spec["labels"]
    (short / "pipeline.json").write_text(json.dumps(spec))
    (garbled / "emotions.tflite").write_bytes(b"no model" * 64)
    for folder, line in (
            (short, f"error: {short / 'pipeline.json'} lacks 'labels'"),
            (garbled, f"error: {garbled / 'emotions.tflite'} is not a .tflite model LiteRT "
                      "can run")):
        done = run_on_device(folder, "x.jpg")
        assert done.returncode == 2 and done.stdout == ""
        assert done.stderr.strip().splitlines() == [line]


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


def test_a_web_export_without_litertjs_is_one_clear_line_before_any_work(tmp_path,
                                                                           monkeypatch):
    from gimefive_tf.errors import GiMeFiveError
    from gimefive_tf.export import webapp

    monkeypatch.setattr(webapp, "RUNTIME", tmp_path / "node_modules" / "@litertjs")
    with pytest.raises(GiMeFiveError, match=r"needs LiteRT.js .*: run npm ci --prefix"):
        export_main(["--out", str(tmp_path / "out"), "--formats", "mobile,web"])
    assert not (tmp_path / "out").exists()


def test_a_model_the_bundle_cannot_write_out_is_one_clear_line(tmp_path):
    from gimefive_tf.models import create_model

    create_model("gimefive_res", base_filters=4).save(tmp_path / "res.keras")
    done = subprocess.run([sys.executable, "-m", "gimefive_tf.export", "--model",
                           str(tmp_path / "res.keras"), "--out", str(tmp_path / "out"),
                           "--formats", "mobile"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stderr.startswith("error: the on-device bundle writes "
                                                           "GiMeFive-style models only")
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "out" / "mobile").exists()


# ------------------------------------------------------------------------------ the web app

@pytest.fixture(scope="module")
def web(exported):
    """The offline web app; in CI its absence is a failure (the README installs LiteRT.js)."""
    if not (exported / "web").is_dir():
        if os.environ.get("CI"):
            pytest.fail("LiteRT.js is missing: the README's first command runs npm ci")
        pytest.skip("LiteRT.js is not installed (npm ci --prefix gimefive_tf/webapp)")
    return exported / "web"


@contextlib.contextmanager
def static_server(folder):
    """Any static file server serves the app: Python's own, on a free port."""
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def app_page(url, *flags):
    """A headless Chromium page on the app at `url`, loaded; yields (page, requests made to
    anywhere but the app's own origin)."""
    from playwright.sync_api import sync_playwright

    from test_serve_browser import chromium

    origin = "/".join(url.split("/")[:3]) + "/"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=[
            "--no-sandbox", "--disable-gpu", *flags])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            outside = []
            page.on("request", lambda r: outside.append(r.url)
                    if not r.url.startswith((origin, "data:", "blob:")) else None)
            page.goto(url)
            wait_ready(page)
            yield page, outside
        finally:
            browser.close()


def wait_ready(page):
    page.wait_for_function("window.gimefive.ready || window.gimefive.error", timeout=120_000)
    assert page.evaluate("window.gimefive.error") is None


def uploaded(page, path):
    """The records the page computed for one picture file."""
    done = page.evaluate("window.gimefive.pictures.length")
    page.set_input_files("#file", str(path))
    page.wait_for_function(f"window.gimefive.pictures.length > {done}", timeout=120_000)
    return page.evaluate("window.gimefive.pictures")[-1]["records"]


def assert_same_faces(mine, theirs, pixels=None):
    """The same faces (IoU >= 0.5; boxes within `pixels` when given) with the same emotions."""
    from gimefive_tf.faces import Box, iou

    assert len(mine) == len(theirs), (mine, theirs)
    for a, b in zip(mine, theirs):
        assert a["emotion"] == b["emotion"], (a, b)
        if a["box"] is not None:
            assert iou(Box(*a["box"]), Box(*b["box"])) >= 0.5, (a, b)
            if pixels is not None:
                assert np.abs(np.subtract(a["box"], b["box"])).max() <= pixels, (a, b)


def test_the_web_app_is_served_classifies_in_the_browser_and_works_offline(web, on_device,
                                                                          tmp_path):
    """`serve --app` serves it; an upload gives the reference pipeline's records (the same
    boxes to a pixel) and predict's faces and emotions; with the server stopped, a reload still
    starts the app and classifies; nothing is fetched from anywhere but the app's origin."""
    from PIL import Image
    from skimage import data

    from gimefive_tf.ondevice import read_picture
    from test_serve import server

    path = tmp_path / "astronaut.jpg"
    Image.fromarray(data.astronaut()).save(path, quality=92)
    reference = on_device.records(read_picture(path), path.name)
    library = [r.to_dict() for r in FacePipeline()(read_picture(path), path.name)]
    artifacts = pathlib.Path(os.environ.get("GIMEFIVE_ARTIFACTS",
                                            pathlib.Path(__file__).parents[1] / "artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    with server("--app", str(web)) as (url, process), app_page(url + "/app/") as (page, outside):
        page.wait_for_function("window.gimefive.offline !== null", timeout=120_000)
        assert page.evaluate("window.gimefive.offline")  # every file cached by the worker
        assert "Works offline" in page.text_content("#offline")
        manifest = page.evaluate("fetch('manifest.webmanifest').then(r => r.json())")
        assert {"192x192", "512x512"} <= {icon["sizes"] for icon in manifest["icons"]}
        records = uploaded(page, path)
        assert_same_faces(records, reference, pixels=1)
        assert_same_faces(records, library)
        assert page.get_attribute("#view", "data-overlays") == "1"
        page.screenshot(path=str(artifacts / "webapp_page.png"), full_page=True)
        process.kill()
        process.wait()
        page.reload()
        wait_ready(page)
        assert_same_faces(uploaded(page, path), reference, pixels=1)
        assert not outside, outside
    assert (artifacts / "webapp_page.png").stat().st_size > 10_000


def camera_clip(faces, size=(640, 480), side=200, frames_each=8, seed=0):
    """Frames of held-out faces, one at a time, each drifting a few pixels over a textured
    background for `frames_each` frames."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    width, height = size
    background = np.asarray(Image.fromarray(rng.integers(60, 200, (12, 16, 3), np.uint8))
                            .resize(size, Image.BILINEAR))
    frames = []
    for face in faces:
        big = np.asarray(Image.fromarray(face).resize((side, side), Image.BICUBIC))
        x0, y0 = rng.integers(40, width - side - 40), rng.integers(20, height - side - 20)
        for step in range(frames_each):
            frame = background.copy()
            x, y = x0 + 2 * step, y0 + step
            frame[y:y + side, x:x + side] = big
            frames.append(frame)
    return frames


@pytest.mark.data
def test_the_web_app_camera_agrees_with_the_reference_pipeline_frame_by_frame(
        web, on_device, datasets_dir, tmp_path):
    """Chromium's fake camera plays held-out faces; every frame the page computed (kept as a
    lossless PNG) is run through the reference pipeline as the video path runs it: the same
    faces and emotions on >= 95% of frames."""
    from gimefive_tf.data import load_arrays, read_dataset, stratified_split
    from gimefive_tf.export.webapp import kept_frame, write_y4m

    _, validation = stratified_split(read_dataset(datasets_dir / "RAF-DB"), 0.1, seed=0)
    faces, _ = load_arrays(validation.sample(12, seed=5), 64)
    write_y4m(tmp_path / "clip.y4m", camera_clip(faces))
    frames = 30
    with static_server(web) as url, app_page(
            f"{url}/?camera=1&record={frames}", "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={tmp_path / 'clip.y4m'}") as (page, outside):
        page.wait_for_function(f"window.gimefive.frames.length >= {frames}", timeout=300_000)
        seen = page.evaluate(f"window.gimefive.frames.slice(0, {frames})")
        assert not outside, outside
    video = on_device.spec["video"]
    agree = found = 0
    for frame in seen:
        reference = on_device.faces(kept_frame(frame), max_side=video["max_side"],
                                    turned=False)
        mine = [r for r in frame["records"] if r["box"] is not None]
        found += len(mine) > 0
        agree += len(mine) == len(reference) and all(
            r["emotion"] == on_device.labels[int(np.argmax(p))] and
            np.abs(np.subtract(r["box"], box.to_list())).max() <= 1  # float32 vs float64
            for r, (box, *_, p, _) in zip(mine, reference))
    assert found >= 0.9 * len(seen), found  # the faces are there to be found
    assert agree >= 0.95 * len(seen), (agree, len(seen))
