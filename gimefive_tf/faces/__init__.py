"""The face path's first half: picture -> faces -> crops framed like the training faces.

One module a job: `boxes` (a face's box and the geometry), `detectors` (BlazeFace, MTCNN, Haar),
`suppression` (one box per face), `search` (which boxes are faces; sizes, second opinions,
turned pictures), `framing` (cut and lit like the training faces, tilted heads turned upright
by the eyes), `calibration` (each model's measured framing, stored beside it), `tracking`
(faces across video frames, cuts between shots) and `cropper` (detect, then frame). Every
entry point (predict, scores, explain, video, the server, batch) reaches them through
`gimefive_tf.analyze`.
"""

from gimefive_tf.faces.boxes import Box, intersection, iou, moved
from gimefive_tf.faces.calibration import (find_calibration, framing_path, read_calibration,
                                           write_calibration)
from gimefive_tf.faces.cropper import FaceCropper
from gimefive_tf.faces.detectors import (DEFAULT_DETECTOR, DETECTORS, BlazeFace,
                                         BlazeFaceFullRange, check_detector, second_opinion)
from gimefive_tf.faces.framing import (FRAMINGS, Framing, align_face, align_matrix, crop_corners,
                                       crop_square, frame_face, frame_matrix, match_lighting,
                                       square_matrix, warp_face)
from gimefive_tf.faces.search import SEARCH_SIDE, VIDEO_DETECTION_SIDE, detect_faces
from gimefive_tf.faces.suppression import is_duplicate, suppress_duplicates
from gimefive_tf.faces.tracking import FaceTracker

__all__ = ["Box", "BlazeFace", "BlazeFaceFullRange", "DEFAULT_DETECTOR", "DETECTORS",
           "FRAMINGS", "FaceCropper", "FaceTracker", "Framing", "SEARCH_SIDE",
           "VIDEO_DETECTION_SIDE", "align_face", "align_matrix", "check_detector",
           "crop_corners", "crop_square", "detect_faces", "find_calibration", "frame_face",
           "frame_matrix", "framing_path", "intersection", "iou", "is_duplicate",
           "match_lighting", "moved", "read_calibration", "second_opinion", "square_matrix",
           "suppress_duplicates", "warp_face", "write_calibration"]
