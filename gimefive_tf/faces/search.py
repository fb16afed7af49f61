"""Which of a detector's boxes are faces: the search of a picture, at the size it is searched,
upright and, when nothing is found upright, turned by quarter turns.

The default (blazeface) takes a BlazeFace box on its own word from BLAZEFACE_SURE_SCORE; a
fairly sure one (from BLAZEFACE_MIN_SCORE) when MTCNN's last network, shown the box, calls it a
face too (a logo it does not); a less sure one (from BLAZEFACE_ONET_SCORE) when that network is
sure of it (ONET_SURE_SCORE: a face in shadow, blurred or lit from one side, but not a patch of
leaves), or else from BLAZEFACE_CANDIDATE_SCORE when MTCNN, shown that spot at the scale it
likes, sees a face there with its eyes where the box has them and ONet does not veto it (a
necklace, a strand of hair or a blurred shape beside a tilted face can pass MTCNN's look at
the spot, not ONet's); then MediaPipe's full-range BlazeFace looks at the whole picture once,
on a black margin so that a face cut by the picture's edge has room around it, and its new
boxes are kept when confirmed alike; a photo
in which none of that finds a face, upright or turned, is searched by MTCNN itself, whose
surest faces (MTCNN_FALLBACK_SCORE) are kept (a small face in flat light that BlazeFace half-
sees: 3 of 27 such misses on 600 pasted pictures; no face on 400 face-free ones). Surest first,
a box that is a face already kept seen again (a forehead, a chin with a hand, an ear: see
`suppression`) is dropped before anyone is asked about it; a face with less than half its box
inside the picture is not reported (there is too little of it to read). Every face found in a
photo that BlazeFace is not sure of is then asked which way up it is (BlazeFace and MTCNN both
half-recognize a face lying on its side or upside down as it is, with its landmarks astray:
`which_way_up`).
"""

import numpy as np

from gimefive_tf.faces.boxes import iou, moved, unturned, visible_part
from gimefive_tf.faces.detectors import (DEFAULT_DETECTOR, BlazeFaceFullRange, check_detector,
                                         confirmed, haar_faces, load_blazeface, mtcnn_faces,
                                         mtcnn_runs, onet_score)
from gimefive_tf.faces.framing import crop_square
from gimefive_tf.faces.suppression import is_duplicate, suppress_duplicates

SEARCH_SIDE = 1024  # photos are searched at most this large: the pyramid's views are relative
VIDEO_DETECTION_SIDE = 640  # video frames are searched at most this large
BLAZEFACE_SURE_SCORE = 0.9  # a BlazeFace box this sure is a face on its own word
BLAZEFACE_MIN_SCORE = 0.7  # from this, a face when MTCNN's last network agrees; a quick look
#                            (a turned view) starts and a search without TensorFlow stops here
BLAZEFACE_ONET_SCORE = 0.5  # from this, a face when that network is sure (ONET_SURE_SCORE)
ONET_MIN_SCORE, ONET_SURE_SCORE = 0.5, 0.9
BLAZEFACE_CANDIDATE_SCORE = 0.3  # from this, a face when MTCNN confirms it, eyes and all
FULL_RANGE_CANDIDATE_SCORE = 0.3  # full-range boxes from this score get a second opinion
MTCNN_FALLBACK_SCORE = 0.95  # MTCNN's own faces from this score, when nothing else was found
FULL_RANGE_MARGIN = 0.125  # its look has this much black around the picture: faces cut by the
#                            edge are seen with room around them
MIN_VISIBLE = 0.5  # a face with less of its box inside the picture cannot be read
MIN_FACE_SIDE = 24  # smaller faces (in the picture's pixels) are not reported
LOCAL_MIN_SCORE = 0.25  # a look near where a face was a frame ago
LOCAL_MAX_RESIZE = 1.25  # a face a few frames later is at most this much larger or smaller
QUARTER_TURNS = (1, 2, 3)


def detect_faces(image, detector=DEFAULT_DETECTOR, min_size=MIN_FACE_SIDE, max_side=SEARCH_SIDE,
                 min_score=None, trusted=(), whole_view_only=False, thorough=True,
                 turned=True, second_opinions=True):
    """Faces in an RGB (or gray) uint8 image, largest first, as Boxes in its own pixels; one
    Box per face, whatever the detector.

    detector: blazeface (the default; see the module), mtcnn or haar. max_side: search a copy
    scaled down to this side (faster, and a face is found relative to the picture's side);
    None: full size. min_score: the detector's own threshold (blazeface, mtcnn), with no second
    opinion. trusted: boxes known to be faces (a video's faces of the last frame): a
    borderline box on one of them needs no second opinion, and the full-range look is left to
    frames where no face is followed. whole_view_only: blazeface looks at
    the picture as one view, no tiles (a region that fits one face). thorough: when nothing is
    found upright or turned, also MTCNN's own search, upright (photos; a video frame only now
    and then, while no face is followed). turned (photos;
    off for video frames): when nothing is found upright, search the picture turned by each
    quarter turn and keep the turn whose face is surest (a phone picture stored sideways
    without EXIF orientation), and a face BlazeFace is not sure of is asked which way up it is
    (`which_way_up`); such faces carry their `angle`. second_opinions=False: blazeface
    without MTCNN's opinions, what a phone runs (`gimefive_tf.faces.spec`: BlazeFace boxes from
    BLAZEFACE_MIN_SCORE, quarter turns when none), as where MTCNN cannot run.
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
    trusted = [moved(box, scale) for box in trusted]
    min_side = max(12, int(round(min_size * scale)))  # Haar's smallest face, searched size
    asks = asks_mtcnn(detector, min_score, second_opinions)
    boxes = _search(image, detector, min_score, trusted, whole_view_only, thorough, turned,
                    min_side=min_side, asks=asks)
    if turned and not boxes:
        boxes = surest_turn(lambda view: _search(
            view, detector, min_score, (), whole_view_only, thorough=False, turned=False,
            quick=True, min_side=min_side, asks=asks), image)
    if not boxes and thorough and not whole_view_only and asks:
        boxes = mtcnn_faces(image, MTCNN_FALLBACK_SCORE)  # nothing upright nor turned
    if scale < 1:
        boxes = [moved(box, 1 / scale) for box in boxes]
    return reported(boxes, image.shape[:2], 1 / scale, min_size)


def surest_turn(search, image, turns=QUARTER_TURNS):
    """The faces `search` finds in `image` turned by the quarter turn whose surest face is
    surest (a tie: the most faces, then the first turn; a face on its side is half-seen in the
    other turns), in the picture's own pixels."""
    found = [[unturned(box, turn, image.shape) for box in
              search(np.ascontiguousarray(np.rot90(image, turn)))] for turn in turns]
    return max(found, key=lambda faces: (max((box.score for box in faces), default=0),
                                         len(faces)))


def reported(boxes, shape, factor=1.0, min_side=MIN_FACE_SIDE, min_visible=MIN_VISIBLE,
             **duplicates):
    """The faces a picture reports from its search's boxes (in its own pixels; `shape`: the
    searched copy's, `factor`: the picture's size over it): each at least `min_side` pixels and
    `min_visible` inside the picture, one per face (`suppress_duplicates`), largest first."""
    boxes = [box for box in boxes if min(box.w, box.h) >= min_side
             and visible_part(box, shape, factor) >= min_visible]
    return sorted(suppress_duplicates(boxes, **duplicates), key=lambda b: b.area, reverse=True)


def asks_mtcnn(detector, min_score=None, second_opinions=True):
    """Whether the search takes MTCNN's second opinions: the default (blazeface at its own
    thresholds, not the phone's search), where MTCNN runs (TensorFlow's Keras)."""
    return (second_opinions and detector == "blazeface" and min_score is None
            and mtcnn_runs())


def _search(image, detector, min_score, trusted, whole_view_only, thorough, turned,
            quick=False, min_side=12, asks=True):
    if asks:  # the full-range look: photos, and video frames while no face is followed
        return _blazeface_search(image, trusted, not (whole_view_only or trusted), turned, quick)
    if detector == "blazeface" and min_score is None:
        return load_blazeface()(image, BLAZEFACE_MIN_SCORE)  # no second opinion off TensorFlow
    if detector == "blazeface":
        return load_blazeface()(image, min_score, 1 if whole_view_only else None)
    if detector == "mtcnn":
        return mtcnn_faces(image, *(() if min_score is None else (min_score,)))
    return haar_faces(image, min_side)


def _blazeface_search(image, trusted, full_range, turned, quick=False):
    """The default search, surest first, each box skipped when it is a face already kept: sure
    boxes, fairly sure ones ONet agrees with, less sure ones ONet is sure of or MTCNN confirms
    (`_is_face`); then (full_range) the full-range look, its new boxes confirmed likewise (a
    video frame's search too while no face is followed: a dark, grainy face that the
    short-range model scores under 0.3 in a compressed frame, the full-range model sees at 0.4
    and ONet is sure of; a followed face is kept by the looks near it). turned: each face
    BlazeFace is not sure of, or whose eyes lie on their side, is also asked which way up it is
    (BlazeFace and MTCNN both half-see a face upside down or on its side as upright). quick:
    from BLAZEFACE_MIN_SCORE, ONet's word only (a turned view of a picture with no face
    upright: a phone picture stored sideways shows its face clearly, and a face-free picture
    should not pay three full searches), without the full-range look."""
    faces = []
    lowest = BLAZEFACE_MIN_SCORE if quick else BLAZEFACE_CANDIDATE_SCORE
    for box in load_blazeface()(image, lowest):  # surest first
        if is_duplicate(box, faces):
            continue
        if _is_face(image, box, trusted, quick):
            faces.append(box)
    if full_range and not quick:
        for box in load_blazeface(BlazeFaceFullRange)(image, FULL_RANGE_CANDIDATE_SCORE,
                                                      margin=FULL_RANGE_MARGIN):
            if not is_duplicate(box, faces) and _confirmed(image, box):
                faces.append(box)
    if not turned:
        return faces
    return [which_way_up(image, box) if box.score < BLAZEFACE_SURE_SCORE or abs(roll(box)) > 45
            else box for box in faces]  # BlazeFace is never this sure of a face turned over


def _is_face(image, box, trusted, quick):
    """Whether a BlazeFace box is a face: sure; near a face of the last frame; fairly sure and
    ONet agrees (ONet's word is final there); less sure and ONet is sure; else (not `quick`)
    MTCNN confirms it (`_confirmed`)."""
    if box.score >= BLAZEFACE_SURE_SCORE or (
            box.score >= LOCAL_MIN_SCORE and any(same_place(box, known) for known in trusted)):
        return True
    if box.score >= BLAZEFACE_MIN_SCORE:
        return onet_score(image, box) >= ONET_MIN_SCORE
    if box.score >= BLAZEFACE_ONET_SCORE and onet_score(image, box) >= ONET_SURE_SCORE:
        return True
    return not quick and _confirmed(image, box)


def same_place(box, last, side=None, max_resize=LOCAL_MAX_RESIZE):
    """Whether `box` can be the face that was at `last` a few frames ago: it overlaps it and is
    within `max_resize` of its side (or of `side`, the face's measured side). A looser box
    around a face (its hair, its shoulders, a hand) overlaps it too; taken for the face, the
    next look is centred on it and the box swells from frame to frame, off the face."""
    ratio = box.side / (side or last.side)
    return iou(box, last) > 0.3 and 1 / max_resize <= ratio <= max_resize


def _confirmed(image, box):
    """Whether MTCNN confirms a box, eyes and all (`confirmed`), and, for a box scored under
    BLAZEFACE_ONET_SCORE, ONet does not veto it (ONET_MIN_SCORE): on 540 tilted and turned
    portraits MTCNN's look confirmed 5 phantoms (a necklace, hair, blurred shapes), all of which
    ONet rejects (0.05-0.46), and on 600 pasted pictures it rejects none of the faces found so."""
    return (box.score >= BLAZEFACE_ONET_SCORE or onet_score(image, box) >= ONET_MIN_SCORE) \
        and confirmed(image, box)  # ONet first: it is the quicker look


def which_way_up(image, box, grow=2.0, min_score=0.8, margin=0.15):
    """`box` as BlazeFace sees it best: shown the face turned by each quarter turn (a square of
    `grow` times its side, at the detector's input size), a turned view wins when BlazeFace is
    sure of it (`min_score`) and surer by `margin` than of the view as it is; when the box's own
    eyes lie more than 45 degrees off the horizontal, the turn they point to. A face lying on its
    side or upside down, which BlazeFace half-recognizes as it is with its landmarks astray,
    comes back with its `angle` and the landmarks of its upright view, in the picture's pixels;
    an upright face (BlazeFace half-sees one turned too) stays as it was found."""
    detector = load_blazeface()
    side = grow * box.side
    x0, y0 = box.center[0] - side / 2, box.center[1] - side / 2
    view = crop_square(image, (x0, y0, side), detector.INPUT, border="black")
    best = [None] * 4  # the surest box overlapping `box` in each turned view
    for turns in (0, 1, 2, 3):
        for found in detector(np.ascontiguousarray(np.rot90(view, turns)), 0.1, levels=1):
            found = moved(unturned(found, turns, view.shape) if turns else found,
                          side / detector.INPUT, x0, y0)
            if iou(found, box) > 0.3 and (best[turns] is None or found.score > best[turns].score):
                best[turns] = found
    as_is = best[0].score if best[0] is not None else 0.0
    turned = max((found for found in best[1:] if found is not None), key=lambda f: f.score,
                 default=None)
    if abs(roll(box)) > 45:  # its eyes say it lies on its side: the turn that stands it up
        return best[int(round(roll(box) / 90)) % 4] or box
    if turned is None or turned.score < max(min_score, as_is + margin):
        return box
    return turned


def roll(box):
    """Degrees from the picture's horizontal to the line through the box's eyes (0 without
    landmarks)."""
    if box.landmarks is None:
        return 0.0
    (x0, y0), (x1, y1) = box.landmarks[:2]
    return float(np.degrees(np.arctan2(y1 - y0, x1 - x0)))
