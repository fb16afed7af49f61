"""Detect, then frame: every face of a picture cut like the training faces of one model."""

import dataclasses

import numpy as np

from gimefive_tf.choices import check_choice
from gimefive_tf.faces.boxes import iou, moved
from gimefive_tf.faces.calibration import find_calibration
from gimefive_tf.faces.detectors import (DEFAULT_DETECTOR, check_detector, mtcnn_near,
                                         onet_landmarks)
from gimefive_tf.faces.framing import FRAMINGS, Framing, crop_square, frame_face, frame_matrix
from gimefive_tf.faces.search import (LOCAL_MAX_RESIZE, LOCAL_MIN_SCORE, SEARCH_SIDE,
                                      asks_mtcnn, detect_faces, same_place)
from gimefive_tf.faces.tracking import carry_eyes

LOCAL_VIEW_SIDE = 256  # the local look's square, in pixels (the detector sees 128)
NEAR_MTCNN_SCORE = 0.9  # a look near a face: MTCNN's box there, where BlazeFace has none
REFINE_MIN_SCORE = 0.5  # ONet's eyes are taken where it sees a face this surely
REFINE_MAX_RESIZE = 1.33  # ... and puts them at about the detector's eye distance
REFINE_MAX_SHIFT = 0.3  # ... and their midpoint within this many eye distances of the detector's


class FaceCropper:
    """Detect faces and cut each like the training faces of a model, by its stored calibration.

    detector: one of DETECTORS. framing: one of FRAMINGS, or None for the calibration's
    measured best. model_path: the model whose calibration to use (None: the shipped model's).
    max_side: search pictures scaled down to this side (photos: SEARCH_SIDE; video: smaller);
    None: full size. turned: search a picture with no face upright turned by quarter turns
    (photos; off for video, where a face-free frame would pay four searches).
    second_opinions=False: the phone's search, without MTCNN (see detect_faces), and the
    detector's own eyes (see `refined`).
    """

    def __init__(self, detector=DEFAULT_DETECTOR, framing=None, model_path=None, size=64,
                 max_side=SEARCH_SIDE, turned=True, second_opinions=True):
        self.detector = check_detector(detector)
        if framing is not None:
            check_choice("framing", framing, FRAMINGS)
        self.size, self.max_side, self.turned = int(size), max_side, bool(turned)
        self.second_opinions = bool(second_opinions)
        self.asks_mtcnn = asks_mtcnn(self.detector, second_opinions=self.second_opinions)
        _, calibration = find_calibration(model_path)
        entry = calibration.get(detector, {})
        self.framing = entry.get("framing", Framing())
        self.how = framing or entry.get("default", "box")
        onet = calibration.get("mtcnn", {}).get("framing")  # MTCNN's box in the training frame
        self.onet_patch = _onet_patch(onet) if (
            onet is not None and self.asks_mtcnn and self.how == "eyes"
            and self.framing.template is not None) else None

    def __call__(self, image, trusted=(), thorough=True, turned=True):
        """[(Box, crop, crop corners in the picture)] for every face, largest first; `trusted`:
        faces known from the last video frame (see detect_faces); turned=False or
        thorough=False (video frames): searched only as it is."""
        image = np.asarray(image)
        found = detect_faces(image, self.detector, max_side=self.max_side, trusted=trusted,
                             thorough=thorough, turned=self.turned and thorough and turned,
                             second_opinions=self.second_opinions)
        return [(box, *self.frame(image, box)) for box in
                (self._with_eyes(image, box, trusted) for box in found)]

    def _with_eyes(self, image, box, trusted):
        """`box` refined (`refined`), or, a face followed from the last video frame, with the
        eyes it had there carried along (`carry_eyes`): a face is looked at closely once."""
        known = max((last for last in trusted if last.eyes is not None and iou(last, box) > 0.3),
                    key=lambda last: iou(last, box), default=None)
        return carry_eyes(box, known) if known is not None else self.refined(image, box)

    def refined(self, image, box):
        """`box` with its `eyes` where MTCNN's last network puts them, shown the face upright
        as MTCNN frames its own faces (placed by BlazeFace's eyes and the model's calibration
        of both detectors). BlazeFace's eyes are a coarse keypoint of a whole-view detector; on
        944 compressed pasted RAF-DB faces (turned by up to 15 degrees) the crops by ONet's
        eyes get the model's answer on the aligned face 0.899 of the time, by BlazeFace's
        0.871 (up to 45 degrees: 0.889 against 0.883). Unchanged where the crop is not cut by
        the eyes, without MTCNN, or where ONet sees no face there or puts the eyes at another
        size or place than BlazeFace (a hand, a profile)."""
        if (self.onet_patch is None or box.landmarks is None
                or len(box.landmarks) != len(self.framing.template)):
            return box
        to_frame = np.vstack([frame_matrix(box, self.framing, "eyes", 1), [0, 0, 1]])
        points, score = onet_landmarks(image, (self.onet_patch @ to_frame)[:2].astype(np.float32))
        eyes, found = points[:2], np.asarray(box.landmarks[:2], np.float64)
        distance = np.linalg.norm(found[1] - found[0])
        resize = np.linalg.norm(eyes[1] - eyes[0]) / max(distance, 1e-6)
        shift = np.linalg.norm(eyes.mean(0) - found.mean(0)) / max(distance, 1e-6)
        if (score < REFINE_MIN_SCORE or not 1 / REFINE_MAX_RESIZE <= resize <= REFINE_MAX_RESIZE
                or shift > REFINE_MAX_SHIFT):
            return box
        return dataclasses.replace(box, eyes=tuple(map(tuple, eyes.round(1).tolist())))

    def frame(self, image, box):
        """(crop, its corners in the picture) of one face."""
        return frame_face(image, box, self.framing, self.how, self.size)

    def search_near(self, image, last, measured=None, views=(2.0, 2.5, 3.0, 1.5),
                    min_score=LOCAL_MIN_SCORE, max_resize=LOCAL_MAX_RESIZE):
        """The face near `last` (a box from the previous frame), looked for in squares of
        `views` times its side centred on it (black beyond the picture's edge), where the face
        fills the detector's view as it likes best, at a lower confidence threshold, until one
        finds it; None when it is not there (the face has gone). The closest view comes last:
        where the wider ones see only a looser box around the face (its hair, a hand, a dark
        border), the face filling more of the view is found on its own. measured: the face's
        side as a search of the whole frame last measured it (default: last's). Only a box
        within `max_resize` of that size is the face (`same_place`); it keeps the eyes a closer
        look placed on `last` (`carry_eyes`). Where no BlazeFace view finds such a box (the
        default search, with MTCNN), MTCNN looks in the twice-as-wide view (faces from
        NEAR_MTCNN_SCORE, the same size rule: an MTCNN box is about 1.1x BlazeFace's, so a face
        BlazeFace measured has less room to grow), and its box keeps its own eyes (MTCNN's
        last network placed them already): a face that only MTCNN's search of the whole frame
        finds (a grotesque grimace, a dark face) is followed between searches too. On seven
        benchmark-like videos it raised the face-frame recall of three (0.949, 0.963, 0.965 to
        0.978, 0.979, 0.970) and lowered none."""
        image = np.asarray(image)
        cx, cy = last.center
        candidates = []
        for grow in views:
            if candidates:
                break  # found in the closer view
            side = grow * last.side
            region = crop_square(image, (cx - side / 2, cy - side / 2, side),
                                 LOCAL_VIEW_SIDE, border="black")
            found = [moved(box, side / LOCAL_VIEW_SIDE, cx - side / 2, cy - side / 2)
                     for box in detect_faces(region, self.detector, min_score=min_score,
                                             whole_view_only=True, turned=False)]
            candidates += [box for box in found if same_place(box, last, measured, max_resize)]
        if candidates:
            return carry_eyes(_surest(candidates, last), last)
        if self.asks_mtcnn:  # MTCNN's box keeps its own eyes: its last network placed them
            return _surest([box for box in mtcnn_near(image, last, min_score=NEAR_MTCNN_SCORE)
                            if same_place(box, last, measured, max_resize)], last)
        return None


def _surest(boxes, last):
    """The surest of `boxes` (a tie: the one overlapping `last` most); None when empty."""
    return max(boxes, key=lambda box: (box.score, iou(box, last)), default=None)


def _onet_patch(onet):
    """The 3x3 map from the training faces' frame (a unit square) onto ONet's 48x48 patch of
    the box MTCNN would give that face (`onet`: MTCNN's calibrated Framing)."""
    side = 1 / onet.scale
    x0, y0 = 0.5 - onet.dx * side - side / 2, 0.5 - onet.dy * side - side / 2
    return np.array([[48 / side, 0, -48 * x0 / side], [0, 48 / side, -48 * y0 / side],
                     [0, 0, 1]])
