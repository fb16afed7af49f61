"""Faces across video frames: stable ids, which faces the last frame had that this one lost,
and the cuts between shots, where every face is new."""

import dataclasses

import numpy as np

from gimefive_tf.faces.boxes import iou

SMOOTH_FRAMES = 5  # a video face's scores are the mean of its last this many frames'
CUT_DIFFERENCE = 15.0  # a frame whose thumbnail differs by this many levels on average: a cut
MEASURED_SEARCHES = 3  # a face's measured side: the median of its last this many searches'


def thumbnail(rgb):
    """A frame as a cut is told by: 32x24 grayscale levels. Camera noise, compression and faces
    moving a few pixels change it by about 1 level on average; a cut to a new shot, by 20-45 on
    the video benchmark's."""
    import cv2

    gray = cv2.cvtColor(np.ascontiguousarray(rgb[..., :3]), cv2.COLOR_RGB2GRAY)
    return cv2.resize(gray, (32, 24), interpolation=cv2.INTER_AREA).astype(np.float32)


def is_cut(before, after, threshold=CUT_DIFFERENCE):
    """Whether two frames' thumbnails belong to different shots."""
    return before is not None and float(np.abs(after - before).mean()) > threshold


def carry_eyes(box, last):
    """`box` with the eyes a closer look placed on `last` (the same face a frame or so ago),
    carried where they lay against the detector's two eyes (in units of the vector between
    them), so that a face followed between whole-frame searches keeps its framing without the
    closer look in every frame. Unchanged when `last` has no such eyes."""
    if last.eyes is None or last.landmarks is None or box.landmarks is None:
        return box
    (left, right), (new_left, new_right) = (
        [complex(*point) for point in marks[:2]] for marks in (last.landmarks, box.landmarks))
    if left == right:
        return box
    eyes = [new_left + (complex(*eye) - left) / (right - left) * (new_right - new_left)
            for eye in last.eyes]  # complex numbers: the same rotation and scale as the eyes'
    return dataclasses.replace(
        box, eyes=tuple((round(eye.real, 1), round(eye.imag, 1)) for eye in eyes))


class FaceTracker:
    """Stable ids across frames: boxes are matched greedily on overlap with the tracks, and a
    track survives `max_missing` frames without a box (so a face that returns keeps its id)."""

    def __init__(self, min_iou=0.3, max_missing=10, measured_searches=MEASURED_SEARCHES):
        self.min_iou, self.max_missing = min_iou, max_missing
        self.measured_searches = max(1, int(measured_searches))
        self.tracks = {}  # id -> (box, frames since seen, sides whole-frame searches measured)
        self.next_id = 1

    def forget(self):
        """A new shot: every face seen so far is gone (ids go on counting)."""
        self.tracks.clear()

    def current(self):
        """The boxes of the faces seen in the previous frame."""
        return [box for box, missing, _ in self.tracks.values() if missing == 0]

    def lost(self, boxes, within=3):
        """[(id, last box)] of the faces seen in one of the last `within` frames that no box
        overlaps now: where a local second look may find what the detector missed (a face the
        look misses once, in a compressed frame, is looked for again in the next)."""
        return [(track_id, box) for track_id, (box, missing, _) in self.tracks.items()
                if missing < within and all(iou(box, other) < self.min_iou for other in boxes)]

    def measured_side(self, track_id):
        """The face's side as the last searches of the whole frame that found it measured it:
        the median of the last `measured_searches` (None: never measured so). One search's box
        can be half the face (a compressed frame, a beard): taken alone, the face's true box
        would then be too large to be it in every look until the next search."""
        sides = self.tracks[track_id][2] if track_id in self.tracks else ()
        return float(np.median(sides)) if sides else None

    def update(self, boxes, searched=None):
        """Ids for `boxes`, in the same order. searched: how many of them, from the first, a
        search of the whole frame found (default: all); their sides become their faces' measured
        sides, and the others (found by a look near a face's last place) keep the side measured
        before."""
        searched = len(boxes) if searched is None else searched
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
                box, missing, sides = self.tracks[track_id]
                if missing + 1 > self.max_missing:
                    del self.tracks[track_id]
                else:
                    self.tracks[track_id] = (box, missing + 1, sides)
        for i, box in enumerate(boxes):
            sides = self.tracks[ids[i]][2] if ids[i] in self.tracks else ()
            if i < searched:
                sides = (sides + (box.side,))[-self.measured_searches:]
            self.tracks[ids[i]] = (box, 0, sides)
        return ids
