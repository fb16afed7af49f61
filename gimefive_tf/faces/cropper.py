"""Detect, then frame: every face of a picture cut like the training faces of one model."""

import numpy as np

from gimefive_tf.choices import check_choice
from gimefive_tf.faces.boxes import iou, moved
from gimefive_tf.faces.calibration import find_calibration
from gimefive_tf.faces.detectors import DEFAULT_DETECTOR, check_detector
from gimefive_tf.faces.framing import FRAMINGS, Framing, crop_square, frame_face
from gimefive_tf.faces.search import (LOCAL_MAX_RESIZE, LOCAL_MIN_SCORE, SEARCH_SIDE,
                                      detect_faces, same_place)

LOCAL_VIEW_SIDE = 256  # the local look's square, in pixels (the detector sees 128)


class FaceCropper:
    """Detect faces and cut each like the training faces of a model, by its stored calibration.

    detector: one of DETECTORS. framing: one of FRAMINGS, or None for the calibration's
    measured best. model_path: the model whose calibration to use (None: the shipped model's).
    max_side: search pictures scaled down to this side (photos: SEARCH_SIDE; video: smaller);
    None: full size. turned: search a picture with no face upright turned by quarter turns
    (photos; off for video, where a face-free frame would pay four searches).
    second_opinions=False: the phone's search, without MTCNN (see detect_faces).
    """

    def __init__(self, detector=DEFAULT_DETECTOR, framing=None, model_path=None, size=64,
                 max_side=SEARCH_SIDE, turned=True, second_opinions=True):
        self.detector = check_detector(detector)
        if framing is not None:
            check_choice("framing", framing, FRAMINGS)
        self.size, self.max_side, self.turned = int(size), max_side, bool(turned)
        self.second_opinions = bool(second_opinions)
        _, calibration = find_calibration(model_path)
        entry = calibration.get(detector, {})
        self.framing = entry.get("framing", Framing())
        self.how = framing or entry.get("default", "box")

    def __call__(self, image, trusted=(), thorough=True, turned=True):
        """[(Box, crop, crop corners in the picture)] for every face, largest first; `trusted`:
        faces known from the last video frame (see detect_faces); turned=False or
        thorough=False (video frames): searched only as it is."""
        image = np.asarray(image)
        return [(box, *self.frame(image, box))
                for box in detect_faces(image, self.detector, max_side=self.max_side,
                                        trusted=trusted, thorough=thorough,
                                        turned=self.turned and thorough and turned,
                                        second_opinions=self.second_opinions)]

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
        within `max_resize` of that size is the face (`same_place`)."""
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
        return max(candidates, key=lambda box: (box.score, iou(box, last))) if candidates else None
