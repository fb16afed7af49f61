"""Face detection and cropping: the one place a photo or video frame becomes model-ready faces.

Every entry point that starts from a full picture (frame extraction, scores on photos, the video
annotator, the README demo) calls `detect_faces` and `crop_face` from here.
"""

import dataclasses
import functools

import numpy as np

from gimefive_tf.errors import GiMeFiveError

DETECTORS = ("haar", "mtcnn")
DEFAULT_MARGIN = 0.15
VIDEO_DETECTION_SIDE = 320  # video frames are searched at this size: 4x faster on 640x480


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


@functools.lru_cache(maxsize=None)
def _mtcnn():
    try:
        from mtcnn import MTCNN
    except ImportError:
        raise GiMeFiveError("the mtcnn detector needs the mtcnn package (pip install mtcnn); "
                            "or use --detector haar") from None
    return MTCNN(device="CPU:0")


def detect_faces(image, detector="haar", min_size=24, max_side=None):
    """Faces in an RGB (or gray) uint8 image, largest first, as Boxes.

    haar: OpenCV's frontal-face cascade (fast, frontal faces); mtcnn: the MTCNN cascade of CNNs
    from the mtcnn package, which ships its weights (slower, finds turned and small faces).
    max_side: search a copy scaled down to this side (faster, for video); None: full size.
    """
    import cv2

    if detector not in DETECTORS:
        raise GiMeFiveError(f"detector={detector!r} is not allowed; choose one of "
                            f"{', '.join(DETECTORS)}")
    image = np.asarray(image)
    if detector == "mtcnn":
        rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=-1)
        found = _mtcnn().detect_faces(np.ascontiguousarray(rgb[..., :3]))
        boxes = [Box(int(f["box"][0]), int(f["box"][1]), int(f["box"][2]), int(f["box"][3]),
                     float(f["confidence"])) for f in found if min(f["box"][2:]) >= min_size]
        return sorted(boxes, key=lambda b: b.area, reverse=True)
    gray = image if image.ndim == 2 else cv2.cvtColor(image[..., :3], cv2.COLOR_RGB2GRAY)
    scale = min(1.0, max_side / max(gray.shape)) if max_side else 1.0
    if scale < 1:
        gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    gray = cv2.equalizeHist(gray)
    side = max(12, int(round(min_size * scale)))
    found = _haar_cascade().detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5,
                                             minSize=(side, side))
    boxes = [Box(*(int(round(v / scale)) for v in (x, y, w, h))) for x, y, w, h in found]
    return sorted(boxes, key=lambda b: b.area, reverse=True)


def iou(a, b):
    """Intersection over union of two Boxes."""
    x0, y0 = max(a.x, b.x), max(a.y, b.y)
    x1, y1 = min(a.x + a.w, b.x + b.w), min(a.y + a.h, b.y + b.h)
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    union = a.area + b.area - inter
    return inter / union if union else 0.0


class FaceTracker:
    """Gives each face a stable id across frames by matching boxes greedily on overlap."""

    def __init__(self, min_iou=0.3, max_missing=10):
        self.min_iou, self.max_missing = min_iou, max_missing
        self.tracks = {}  # id -> (box, frames since seen)
        self.next_id = 1

    def update(self, boxes):
        """Ids for `boxes`, in the same order."""
        pairs = sorted(((iou(box, track[0]), i, track_id)
                        for i, box in enumerate(boxes)
                        for track_id, track in self.tracks.items()), reverse=True)
        ids, used = [None] * len(boxes), set()
        for overlap, i, track_id in pairs:
            if overlap < self.min_iou or ids[i] is not None or track_id in used:
                continue
            ids[i] = track_id
            used.add(track_id)
        for i, box in enumerate(boxes):
            if ids[i] is None:
                ids[i] = self.next_id
                self.next_id += 1
        for track_id in list(self.tracks):
            if track_id not in ids:
                box, missing = self.tracks[track_id]
                if missing + 1 > self.max_missing:
                    del self.tracks[track_id]
                else:
                    self.tracks[track_id] = (box, missing + 1)
        for i, box in enumerate(boxes):
            self.tracks[ids[i]] = (box, 0)
        return ids


def crop_square(box, margin=DEFAULT_MARGIN):
    """(x0, y0, side): the square around `box` grown by `margin` per side, in image pixels.

    The one definition of a face crop's extent: crop_face cuts it and video draws on it.
    """
    side = int(round(max(box.w, box.h) * (1 + 2 * margin)))
    cx, cy = box.x + box.w / 2, box.y + box.h / 2
    return int(round(cx - side / 2)), int(round(cy - side / 2)), side


def crop_face(image, box, size=64, margin=DEFAULT_MARGIN):
    """The square crop around `box`, grown by `margin` per side, as uint8 RGB size x size.

    The margin makes detector boxes resemble the aligned training faces; parts outside the
    picture are filled by edge replication.
    """
    import cv2

    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    x0, y0, side = crop_square(box, margin)
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
