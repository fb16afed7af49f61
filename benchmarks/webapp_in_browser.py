"""The offline web app in a real browser (Debian's headless Chromium, through Playwright): frames
per second from a camera, seconds per uploaded photo, and agreement with the reference pipeline
(`gimefive_tf.ondevice`) on the very pixels the page computed, in one run.

The camera is Chromium's fake one playing a clip of pasted validation faces (faces_in_scenes.py's
scenes at 640x480, each held for a second); the page keeps its first frames as lossless PNGs,
which the reference pipeline reads as the video path does. Photos are ../shared/photos, uploaded
one at a time (Pillow and the browser decode their JPEGs).

    python -m gimefive_tf.export --out export --formats web
    python benchmarks/webapp_in_browser.py --app export/web
"""

import json
import pathlib
import shutil
import subprocess
import sys
import time

import numpy as np

from faces_in_scenes import validation_faces
from ondevice_parity import faces_of, matched, picture_arguments
from gimefive_tf.export.webapp import kept_frame, write_y4m
from gimefive_tf.ondevice import OnDevicePipeline, read_picture
from gimefive_tf.scenes import random_scene

FPS = 10


def camera_clip(path, faces, seed, seconds_each=1.0):
    """A clip of one pasted face (a 640x480 scene) per second, for Chromium's fake camera."""
    rng = np.random.default_rng(seed)
    scenes = (random_scene(face, rng).picture for face in faces)
    write_y4m(path, (scene for scene in scenes for _ in range(int(seconds_each * FPS))), FPS)


def same(records, reference, labels):
    """The page's records and the reference's faces: as many, paired by IoU >= 0.5 (the
    order by area can swap two faces of nearly one size), with the same emotions."""
    mine = faces_of(records)
    theirs = [{"box": face.box.to_list(), "emotion": labels[int(np.argmax(face.probabilities))]}
              for face in reference]
    pairs = matched(theirs, mine)
    return len(mine) == len(theirs) == len(pairs) and all(
        a["emotion"] == b["emotion"] for a, b in pairs)


def main(argv=None):
    parser = picture_arguments(__doc__, faces=20, what="faces in the camera clip")
    parser.add_argument("--app", required=True, help="the folder export --formats web wrote")
    parser.add_argument("--frames", type=int, default=60, help="camera frames compared (60)")
    parser.add_argument("--max-photos", type=int, default=20, help="photos uploaded (20)")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    app = pathlib.Path(args.app)
    reference = OnDevicePipeline(app / "bundle")
    workspace = pathlib.Path("/tmp") / f"webapp_bench_{time.time_ns()}"
    workspace.mkdir()
    faces, _ = validation_faces(args.data, args.faces, args.seed)
    camera_clip(workspace / "clip.y4m", faces, args.seed)
    photos = sorted(pathlib.Path(args.photos).glob("*.jpg"))[:args.max_photos]
    port = 8000 + args.seed % 1000
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind",
                               "127.0.0.1", "--directory", str(app)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        time.sleep(1)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=[
                "--no-sandbox", "--disable-gpu", "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-video-capture={workspace / 'clip.y4m'}"])
            page = browser.new_page()
            page.goto(url)
            page.wait_for_function("window.gimefive.ready", timeout=120_000)
            for index, photo in enumerate(photos):
                page.set_input_files("#file", str(photo))
                page.wait_for_function(f"window.gimefive.pictures.length > {index}",
                                       timeout=120_000)
            uploads = page.evaluate("window.gimefive.pictures")
            page.goto(f"{url}?camera=1&record={args.frames}")
            page.wait_for_function(f"window.gimefive.frames.length >= {args.frames}",
                                   timeout=600_000)
            fps = page.evaluate("window.gimefive.fps")
            frames = page.evaluate(f"window.gimefive.frames.slice(0, {args.frames})")
            browser.close()
    finally:
        server.kill()
        shutil.rmtree(workspace, ignore_errors=True)
    video = reference.spec["video"]
    agree = found = 0
    for frame in frames:
        theirs = reference.faces(kept_frame(frame), max_side=video["max_side"], turned=False)
        agree += same(frame["records"], theirs, reference.labels)
        found += bool(faces_of(frame["records"]))
    photo_agree, python_seconds = 0, []
    for photo, upload in zip(photos, uploads):
        picture = read_picture(photo)
        started = time.perf_counter()
        theirs = reference.faces(picture)
        python_seconds.append(time.perf_counter() - started)
        photo_agree += same(upload["records"], theirs, reference.labels)
    result = {
        "browser": "headless Chromium (Debian), LiteRT.js on WebAssembly (CPU)",
        "camera": {"frames": len(frames), "frames_per_second": round(fps, 2),
                   "frames_with_a_face": found,
                   "same_faces_and_emotions_as_reference": round(agree / len(frames), 4)},
        "photos": {"pictures": len(uploads),
                   "browser_seconds_per_picture": round(float(np.mean(
                       [u["seconds"] for u in uploads])), 3),
                   "reference_seconds_per_picture": round(float(np.mean(python_seconds)), 3),
                   "same_faces_and_emotions_as_reference": round(photo_agree / len(uploads), 4)},
    }
    print(json.dumps(result, indent=2))
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
