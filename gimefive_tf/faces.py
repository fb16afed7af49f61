"""Face detection and cropping: the one place a photo or video frame becomes model-ready faces.

Every entry point that starts from a full picture (frame extraction, scores on photos, the video
annotator, the README demo) calls `detect_faces` and `crop_face` from here.
"""

import dataclasses
import functools

import numpy as np

from gimefive_tf.errors import GiMeFiveError

DETECTORS = ("haar",)
DEFAULT_MARGIN = 0.15


@dataclasses.dataclass(frozen=True)
class Box:
    """A face box in pixels: top-left corner (x, y), width and height, detector score."""

    x: int
    y: int
    w: int
    h: int
    score: float = 1.0

    @property
    def area(self):
        return self.w * self.h


@functools.lru_cache(maxsize=None)
def _haar_cascade():
    import cv2

    path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise GiMeFiveError(f"OpenCV's Haar cascade is missing ({path}); reinstall "
                            "opencv-python-headless 4.x")
    return cascade


def detect_faces(image, detector="haar", min_size=24):
    """Faces in an RGB (or gray) uint8 image, largest first, as Boxes."""
    import cv2

    if detector not in DETECTORS:
        raise GiMeFiveError(f"detector={detector!r} is not allowed; choose one of "
                            f"{', '.join(DETECTORS)}")
    image = np.asarray(image)
    gray = image if image.ndim == 2 else cv2.cvtColor(image[..., :3], cv2.COLOR_RGB2GRAY)
    gray = cv2.equalizeHist(gray)
    found = _haar_cascade().detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5,
                                             minSize=(min_size, min_size))
    boxes = [Box(int(x), int(y), int(w), int(h)) for x, y, w, h in found]
    return sorted(boxes, key=lambda b: b.area, reverse=True)


def crop_face(image, box, size=64, margin=DEFAULT_MARGIN):
    """The square crop around `box`, grown by `margin` per side, as uint8 RGB size x size.

    The margin makes detector boxes resemble the aligned training faces; parts outside the
    picture are filled by edge replication.
    """
    import cv2

    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    side = int(round(max(box.w, box.h) * (1 + 2 * margin)))
    cx, cy = box.x + box.w / 2, box.y + box.h / 2
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    pad = max(0, -x0, -y0, x0 + side - image.shape[1], y0 + side - image.shape[0])
    if pad:
        image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0 = x0 + pad, y0 + pad
    crop = image[y0:y0 + side, x0:x0 + side, :3]
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=interpolation)


def largest_face(image, detector="haar", size=64, margin=DEFAULT_MARGIN):
    """(crop, box) of the largest face in `image`, or (None, None) when there is none."""
    boxes = detect_faces(image, detector)
    if not boxes:
        return None, None
    return crop_face(image, boxes[0], size, margin), boxes[0]
