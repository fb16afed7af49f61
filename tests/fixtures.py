"""Generated dataset fixtures: tiny images in every format and every public layout."""

import pathlib

import cv2
import numpy as np


def write_image(path, shape=(20, 24, 3), seed=0, dtype=np.uint8):
    """Write a random image (channels last, RGB(A) or gray) with OpenCV; returns its RGB pixels."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    top = 65535 if dtype == np.uint16 else 255
    pixels = rng.integers(0, top + 1, size=shape).astype(dtype)
    bgr = pixels
    if pixels.ndim == 3 and pixels.shape[-1] == 3:
        bgr = pixels[..., ::-1]
    elif pixels.ndim == 3 and pixels.shape[-1] == 4:
        bgr = pixels[..., [2, 1, 0, 3]]
    assert cv2.imwrite(str(path), np.ascontiguousarray(bgr))
    return pixels


def write_corrupt_files(folder):
    """An empty file, a truncated JPEG and a text file wearing an image extension."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.jpg").write_bytes(b"")
    write_image(folder / "whole.jpg", (64, 64, 3), seed=9)
    data = (folder / "whole.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (folder / "whole.jpg").unlink()
    (folder / "notes.png").write_text("this is not an image")
    return ["empty.jpg", "truncated.jpg", "notes.png"]


def make_folders_dataset(root, per_class=2, split_dirs=("train", "test")):
    """Class folders with public spellings in mixed case, plus neutral and contempt folders."""
    names = {"Happy": 0, "SURPRISED": 1, "sad": 2, "Angry": 3, "disgusted": 4, "Fearful": 5,
             "neutral": None, "Contempt": None}
    seed = 0
    for split in split_dirs or [""]:
        for name in names:
            for i in range(per_class):
                seed += 1
                write_image(pathlib.Path(root) / split / name / f"{i}.png", (16, 16, 3), seed)
    return names


def make_rafdb_dataset(root):
    """RAF-DB's download layout: train|test/<code>/ folders and <split>_labels.csv (RAF codes)."""
    root = pathlib.Path(root)
    expected = {"train": [], "test": []}
    codes = [1, 2, 3, 4, 5, 6, 7, 4]
    for split in ("train", "test"):
        lines = ["image,label"]
        for i, code in enumerate(codes):
            name = f"{split}_{i:05d}_aligned.jpg"
            write_image(root / split / str(code) / name, (100, 100, 3), seed=i)
            lines.append(f"{name},{code}")
            expected[split].append(code)
        (root / f"{split}_labels.csv").write_text("\n".join(lines) + "\n")
    return expected


def make_fer2013_csv(path, rows):
    """fer2013.csv with (emotion code, usage) rows; pixels are 48x48 random gray."""
    rng = np.random.default_rng(0)
    lines = ["emotion,pixels,Usage"]
    for code, usage in rows:
        pixels = " ".join(str(v) for v in rng.integers(0, 256, 48 * 48))
        lines.append(f"{code},{pixels},{usage}")
    pathlib.Path(path).write_text("\n".join(lines) + "\n")
