"""The face pipeline as a specification: every number and rule between a picture and the
classifier's input (and after its output), as one JSON document.

The on-device bundle carries it (`pipeline.json`), so a port to a phone or a browser needs
nothing else, and the reference port `gimefive_tf.ondevice` reads only it. It is written from
the very constants the library's own search, suppression, framing and lighting run on, so the
two cannot drift apart: a test runs both on real photographs and requires the same faces and
emotions. What the desktop pipeline adds that a phone does not run (MTCNN's second opinions,
the full-range look, MTCNN's own search when nothing is found, the which-way-up check, the
video path's local looks) is listed under `desktop_only`, with what leaving it out costs.
"""

from gimefive_tf.labels import EMOTIONS

SPEC_FILE = "pipeline.json"
SPEC_FORMAT = "gimefive-ondevice"
SPEC_VERSION = 1
KEYPOINT_NAMES = ("right eye", "left eye", "nose tip", "mouth", "right ear", "left ear")

DESKTOP_ONLY = [
    {"step": "second opinions",
     "what": "MTCNN's last network vetoes BlazeFace boxes scored 0.7-0.9 and accepts 0.5-0.7 "
             "boxes it is sure of; MTCNN confirms 0.3-0.5 boxes with their eyes in place, unless "
             "that network vetoes them"},
    {"step": "full-range look",
     "what": "MediaPipe's full-range BlazeFace over the whole picture on a black margin, its "
             "new boxes kept when MTCNN confirms them (faces cut by the edge, hands on mouths; "
             "in video frames while no face is followed)"},
    {"step": "MTCNN fallback",
     "what": "a photo where nothing is found upright or turned is searched by MTCNN itself "
             "(a video frame while no face is followed, every fifth)"},
    {"step": "eyes by MTCNN",
     "what": "each face's crop is aligned by the eyes MTCNN's last network places, shown the "
             "face upright (video: when a search first finds a face, carried while it is "
             "followed); the phone aligns by BlazeFace's eyes"},
    {"step": "which way up",
     "what": "a face BlazeFace is not sure of is shown to it turned by each quarter turn"},
    {"step": "video local looks",
     "what": "between whole-frame searches, each face is looked for near its last place at a "
             "lower threshold, the closest view last, a box only within 1.25x of the face's "
             "size, MTCNN's look where BlazeFace sees none; a cut to a new shot forgets every "
             "face; the on-device video path searches every frame instead"},
]


def pipeline_spec(framing, how, mirror=True, explanation=None, detector_file=None,
                  classifier_file=None, model=None):
    """The specification (a JSON-ready dict) for crops framed by `framing` (a faces.Framing, the
    model's calibration for BlazeFace) the `how` way ("eyes", "landmarks" or "box")."""
    from gimefive_tf.faces import search, suppression
    from gimefive_tf.faces.detectors import BlazeFace
    from gimefive_tf.faces.framing import AREA_SHRINK, LIGHTING_EPSILON
    from gimefive_tf.faces.search import VIDEO_DETECTION_SIDE
    from gimefive_tf.faces.tracking import SMOOTH_FRAMES, FaceTracker

    tracker = FaceTracker()
    return {
        "format": SPEC_FORMAT,
        "version": SPEC_VERSION,
        "model": model or {},
        "labels": list(EMOTIONS),
        "picture": {
            "orientation": "apply the EXIF orientation first, as a viewer shows the picture",
            "max_side": search.SEARCH_SIDE,
            "resize": "for the search only (faces are cut from the picture at full size): "
                      "scale = min(1, max_side / longer side); the copy is round(width * scale) "
                      "x round(height * scale) (halves to even), each of its pixels the area "
                      "average of the 1 / scale x 1 / scale picture pixels it covers",
        },
        "detector": {
            "file": detector_file,
            "input_size": BlazeFace.INPUT,
            "input": "float32 RGB [1, size, size, 3]: pixel * scale + offset",
            "normalization": {"scale": BlazeFace.PIXEL_SCALE, "offset": BlazeFace.PIXEL_OFFSET},
            "outputs": "regressors [1, anchors, 16] and score logits [1, anchors, 1]: tell "
                       "them apart by their last dimension",
            "anchors": {"strides": list(BlazeFace.STRIDES),
                        "per_stride": BlazeFace.ANCHORS_PER_STRIDE,
                        "order": "by stride, smallest first (equal strides merged); row by row, "
                                 "x fastest; per_stride x (repeats of the stride) per cell",
                        "center": "((column, row) + 0.5) / (size / stride)"},
            "coding": "each regressor divided by size: (dx, dy) the box centre from the anchor, "
                      "(w, h) its size, then keypoints (dx, dy) from the anchor; all in "
                      "fractions of the view",
            "keypoints": list(KEYPOINT_NAMES),
            "keypoints_kept": BlazeFace.KEPT_KEYPOINTS,
            "logit_clip": BlazeFace.LOGIT_CLIP,
            "min_score": search.BLAZEFACE_MIN_SCORE,
            "pyramid": {
                "levels": BlazeFace.LEVELS, "min_tile": BlazeFace.MIN_TILE,
                "rule": "view 1: the whole picture as a square of its longer side (black "
                        "beyond its right and bottom edges); then tiles of half that side, "
                        "then a quarter, while a tile is at least min_tile pixels, stepping "
                        "half a tile in x and y from (0, 0) to cover the picture (a tile "
                        "reaching past an edge is filled with black); each view resized to "
                        "input_size (area averaging down, bilinear up); its boxes moved back "
                        "into the picture"},
            "blend": {"min_iou": suppression.BLEND_IOU, "min_score": suppression.BLEND_MIN_SCORE,
                      "min_cover": suppression.BLEND_COVER,
                      "rule": "surest first over all views' detections: the cluster of those "
                              "overlapping it (IoU > min_iou) becomes the score-weighted mean of "
                              "its members scored >= min(its score, min_score) (boxes and "
                              "keypoints), with its own score; those clustered, and any lying "
                              "more than min_cover inside or around it (intersection over the "
                              "smaller area), are removed"},
        },
        "faces": {
            "duplicates": {"min_iou": suppression.DUPLICATE_IOU,
                           "min_cover": suppression.DUPLICATE_COVER,
                           "rule": "surest first, a box is dropped when its IoU with a kept "
                                   "box exceeds min_iou or the area they share exceeds "
                                   "min_cover of the smaller box"},
            "min_side": search.MIN_FACE_SIDE,
            "min_visible": search.MIN_VISIBLE,
            "boxes": "[x, y, w, h] rounded to whole pixels of the picture",
            "order": "largest area first",
            "turned": {"quarter_turns": list(search.QUARTER_TURNS),
                       "rule": "when nothing is found upright, search the picture turned by "
                               "each quarter turn counter-clockwise (numpy.rot90); keep the "
                               "turn whose surest face is surest (a tie: the one with more "
                               "faces, then the first listed); its boxes and keypoints are "
                               "turned back into the picture, and the face's angle (-90 per "
                               "quarter turn, in (-180, 180]) turns its crop upright"},
        },
        "framing": {
            "how": how,
            "size": 64,
            "template": None if framing.template is None else
            [list(map(float, point)) for point in framing.template],
            "square": {"scale": framing.scale, "dx": framing.dx, "dy": framing.dy,
                       "rule": "a square of scale x the box's longer side, centred on the box "
                               "centre moved by (dx, dy) box sides; turned about the box centre "
                               "by the face's angle"},
            "eyes": "the similarity (rotation, scale, shift) that carries the two eyes onto "
                    "the template's first two points times size",
            "landmarks": "the least-squares similarity (Umeyama) over the kept keypoints",
            "border": "replicate the picture's edge pixels",
            "interpolation": "bilinear, sampling each crop pixel at the map's inverse of its "
                             "corner coordinates (OpenCV's warpAffine convention)",
            "area_shrink": AREA_SHRINK,
            "shrink_rule": "when one crop pixel spans more than area_shrink picture pixels, "
                           "the part of the picture the crop sees is first area-averaged down "
                           "by that factor",
        },
        "lighting": {"mean": framing.mean, "std": framing.std, "epsilon": LIGHTING_EPSILON,
                     "rule": "every pixel of the crop: round((p - crop mean) * std / (crop "
                             "std + epsilon) + mean), clipped to 0..255, over all channels"},
        "classifier": {
            "file": classifier_file,
            "input": "uint8 RGB [1, 64, 64, 3], the framed and lit crop",
            "outputs": {"probabilities": "[1, 6] in labels' order",
                        "heatmap": "[1, 64, 64] in [0, 1], over the crop"},
            "mirror": bool(mirror),
            "mirror_rule": "inside the model: the mean of the softmax of the crop and of its "
                           "left-right mirror image (the library's decision); the heatmap "
                           "explains that decision on the crop as given",
            "explanation": explanation or {},
        },
        "video": {"max_side": VIDEO_DETECTION_SIDE, "same_face_iou": tracker.min_iou,
                  "max_missing_frames": tracker.max_missing, "smooth_frames": SMOOTH_FRAMES,
                  "rule": "search every frame; a face keeps its id when its box overlaps one "
                          "of the last frame's by IoU >= same_face_iou (greedy, best first); "
                          "its scores are the mean of its last smooth_frames frames'"},
        "desktop_only": DESKTOP_ONLY,
    }
