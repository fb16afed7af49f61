"""Frames cut from videos, face-cropped into a labeled csv-layout set (the paper did this for DISFA)."""

import pathlib

import numpy as np

from gimefive_tf.errors import GiMeFiveError
from gimefive_tf.faces import DEFAULT_DETECTOR, FaceCropper
from gimefive_tf.labels import EMOTIONS, label_id


def open_video(path):
    """A cv2.VideoCapture for `path`; GiMeFiveError when OpenCV cannot read it."""
    import cv2

    from gimefive_tf.quiet import native_stderr_silenced

    if not pathlib.Path(path).is_file():
        raise GiMeFiveError(f"video {path} does not exist")
    with native_stderr_silenced():  # FFmpeg and OpenCV say why on fd 2; the error line says it
        capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise GiMeFiveError(f"OpenCV cannot read {path} as a video")
    if _still_image(path):  # FFmpeg opens a JPEG (whatever its name) as a one-frame video
        capture.release()
        raise GiMeFiveError(f"{path} is a still image, not a video; classify it with "
                            "python -m gimefive_tf.predict")
    return capture


def read_frames(path, indices):
    """The frames of a video at the given indices, as RGB arrays (ones past its end left out)."""
    import cv2

    capture, frames = open_video(path), []
    for index in indices:
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = capture.read()
        if ok:
            frames.append(frame[..., ::-1].copy())
    capture.release()
    return frames


VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv")


def _still_image(path):
    from PIL import UnidentifiedImageError

    from gimefive_tf.pictures import FORMATS, open_picture

    try:
        with open_picture(path) as image:  # Pillow also opens raw MPEG streams: photos only
            return image.format in FORMATS and getattr(image, "n_frames", 1) <= 1
    except (UnidentifiedImageError, OSError, ValueError):
        return False


def frame_step(capture, every=None, fps=None):
    """How many frames to advance between kept frames."""
    import cv2

    if every is not None and fps is not None:
        raise GiMeFiveError("pass --every or --fps, not both")
    if every is not None:
        if every < 1:
            raise GiMeFiveError(f"--every {every} must be an integer >= 1")
        return int(every)
    if fps is not None:
        if fps <= 0:
            raise GiMeFiveError(f"--fps {fps} must be positive")
        video_fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        return max(1, int(round(video_fps / fps)))
    return 1


def iter_frames(capture, every=1):
    """(index, RGB frame) of every `every`-th frame of an opened capture, to its end (the
    frames between are skipped undecoded where the codec allows)."""
    import cv2

    index = 0
    while True:
        if index % every:
            if not capture.grab():
                return
        else:
            ok, frame = capture.read()
            if not ok:
                return
            yield index, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        index += 1


def extract_frames(videos, out, every=None, fps=None, label=None, size=64,
                   detector=DEFAULT_DETECTOR, framing=None, progress=None, overwrite=False):
    """Write the largest face of every kept frame as out/frames/<video>_<frame>.jpg plus
    out/frames_labels.csv (label column: the given emotion's id, or empty for the user to fill
    in when no --label was given); an earlier extraction in `out` is written over only with
    `overwrite`."""
    import cv2

    from gimefive_tf.data.tools import write_labels_csv

    label_value = ""
    if label is not None:
        label_value = label_id(label)
        if label_value is None:
            raise GiMeFiveError(f"--label {label} is not one of the six emotions "
                                f"({', '.join(EMOTIONS)})")
    out = pathlib.Path(out)
    csv_path, folder = out / "frames_labels.csv", out / "frames"
    if (csv_path.exists() or folder.exists()) and not overwrite:
        raise GiMeFiveError(f"{out} already holds extracted frames; nothing was overwritten: "
                            "choose another --out")
    captures = [(pathlib.Path(v), open_video(v)) for v in videos]
    cropper = FaceCropper(detector, framing, size=size, turned=False)  # frames come upright
    folder.mkdir(parents=True, exist_ok=True)
    rows, frames_read, without_face = [], 0, 0
    for video, capture in captures:
        step = frame_step(capture, every, fps)
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        frames = iter_frames(capture, step)
        if progress is not None:
            frames = progress(frames, f"{video.name}", total=total and -(-total // step))
        for index, rgb in frames:
            frames_read += 1
            found = cropper(rgb)
            if not found:
                without_face += 1
                continue
            crop = found[0][1]
            name = f"{video.stem}_{index:06d}.jpg"
            cv2.imwrite(str(folder / name), np.ascontiguousarray(crop[..., ::-1]))
            rows.append((f"frames/{name}", label_value))
        capture.release()
    write_labels_csv(csv_path, rows)
    return {"csv": str(csv_path), "frames_read": frames_read, "written": len(rows),
            "frames_without_face": without_face}
