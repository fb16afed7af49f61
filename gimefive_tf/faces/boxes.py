"""A face's box in pixels and the geometry every step of the face path shares."""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Box:
    """A face in pixels: top-left corner (x, y), width, height, detector score, and landmarks
    ((x, y) pairs in the detector's fixed order: the two eyes first, the left one as the face
    is seen upright first) where the detector gives them. A face found in a turned view of the
    picture has its box in the picture's own pixels and the turn in `angle`; the crop turns it
    back upright. `eyes`: the two eyes as a closer look placed them (`FaceCropper.refined`),
    which the crop is aligned by instead of the detector's."""

    x: int
    y: int
    w: int
    h: int
    score: float = 1.0
    landmarks: tuple = None
    angle: float = 0.0  # degrees the face is turned counter-clockwise (found in a turned view)
    eyes: tuple = None  # where a second look put the two eyes (the eye framing's, when set)

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


def moved(box, factor=1.0, dx=0.0, dy=0.0):
    """`box` (and its landmarks and eyes) from a scaled or cut-out view back into the picture:
    every coordinate times `factor`, then shifted by (dx, dy)."""
    def points(marks):
        return None if marks is None else tuple((x * factor + dx, y * factor + dy)
                                                for x, y in marks)

    return Box(int(round(box.x * factor + dx)), int(round(box.y * factor + dy)),
               int(round(box.w * factor)), int(round(box.h * factor)), box.score,
               points(box.landmarks), box.angle, points(box.eyes))


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


def visible_part(box, shape, factor=1.0):
    """The part of `box`'s area inside a picture of `shape` (height, width) times `factor`."""
    height, width = shape[0] * factor, shape[1] * factor
    inside_w = min(width, box.x + box.w) - max(0, box.x)
    inside_h = min(height, box.y + box.h) - max(0, box.y)
    return max(0, inside_w) * max(0, inside_h) / box.area if box.area else 0.0


def unturned(box, turns, shape):
    """A Box found in `np.rot90(picture, turns)` in the picture's own pixels (`shape`: the
    picture's), its landmarks carried along and its `angle` saying how the face lies."""
    height, width = shape[:2]

    def back(x, y):  # a point of the turned view -> the picture
        if turns == 1:
            return width - y, x
        if turns == 2:
            return width - x, height - y
        return y, height - x

    corners = np.array([back(x, y) for x, y in ((box.x, box.y), (box.x + box.w, box.y + box.h))])
    (x0, y0), (x1, y1) = corners.min(0), corners.max(0)
    points = None if box.landmarks is None else tuple(back(*p) for p in box.landmarks)
    angle = (box.angle - 90 * turns + 180) % 360 - 180
    return Box(int(round(x0)), int(round(y0)), int(round(x1 - x0)), int(round(y1 - y0)),
               box.score, points, float(angle if angle != -180 else 180))
