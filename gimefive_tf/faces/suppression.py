"""One face, one box: merging a detector's overlapping boxes, and dropping boxes that are a face
already found seen again.

Real photographs give a face company that a detector can take for a second face: a box over
the forehead and eyes of the face below it, a chin with a hand, an ear. Such a box overlaps the
face's own box only partly (an IoU of 0.2 is common), so suppression by IoU alone keeps it; it
is caught by how much of its own area lies on a surer face.
"""

import numpy as np

from gimefive_tf.faces.boxes import intersection, iou

DUPLICATE_IOU = 0.3
DUPLICATE_COVER = 0.3  # a box with this part of its area on a surer face is that face again
BLEND_IOU, BLEND_MIN_SCORE = 0.3, 0.6  # MediaPipe's weighted suppression (`blend`)
BLEND_COVER = 0.6  # a weaker detection this much inside or around a surer one is dropped


def is_duplicate(box, kept, min_iou=DUPLICATE_IOU, min_cover=DUPLICATE_COVER):
    """Whether `box` is one of the faces in `kept` seen again: overlapping one (IoU), or with
    at least `min_cover` of the smaller box's area shared with it (a smaller box mostly inside
    or across a bigger one, or a bigger box around a smaller face)."""
    return any(iou(box, other) > min_iou or
               intersection(box, other) > min_cover * min(box.area, other.area)
               for other in kept)


def suppress_duplicates(boxes, min_iou=DUPLICATE_IOU, min_cover=DUPLICATE_COVER):
    """The Boxes with every duplicate of a surer one dropped (surest first, order kept)."""
    kept = []
    for box in sorted(boxes, key=lambda b: -b.score):
        if not is_duplicate(box, kept, min_iou, min_cover):
            kept.append(box)
    return [box for box in boxes if any(box is k for k in kept)]


def blend(boxes, points, scores, min_iou=BLEND_IOU, min_blend=BLEND_MIN_SCORE,
          min_cover=BLEND_COVER):
    """MediaPipe's weighted non-maximum suppression: each cluster of overlapping detections
    (x0, y0, x1, y1) becomes their score-weighted mean (a weaker box mostly inside or around
    it, the same face seen by another view of the pyramid with its context, is dropped), which
    steadies the box and landmarks that single anchors and tiles each place a little
    differently; only detections of score
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
        remaining &= ~members & ~(cover > min_cover)
        blended = members & (scores >= min(scores[top], min_blend))
        weights = scores[blended] / scores[blended].sum()
        clusters.append((weights @ boxes[blended], np.tensordot(weights, points[blended], 1),
                         float(scores[top])))
    return clusters
