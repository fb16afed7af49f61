"""Framing and cropping: a detected face cut and lit the way the model's training faces were.

The model was trained on aligned crops, so a detector's box is not what it expects: each
detector frames a face differently (measured on RAF-DB: a Haar box is 1.13 times the aligned
face's side, an MTCNN box 1.2 times and taller than wide, a BlazeFace box 1.06 times and set
lower). `Framing` holds the measured map from a detector's box to the training faces' frame,
the training faces' mean landmark positions (the template eyes are aligned to) and how they are
lit; `gimefive_tf.calibrate` fits it and stores it beside the model (`<model>.framing.json`).
Aligning the eyes to the template also turns a tilted face upright.
"""

import dataclasses

import numpy as np

FRAMINGS = ("box", "eyes", "landmarks")
AREA_SHRINK = 1.5  # a crop pixel spanning more picture pixels than this: area-average first
LIGHTING_EPSILON = 1e-3  # added to a crop's standard deviation before its contrast is matched


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


def crop_square(image, square, size=64, border="replicate"):
    """The (x0, y0, side) square of `image` as uint8 RGB size x size; parts outside the picture
    are filled by edge replication, or black (`border="black"`)."""
    return warp_face(image, square_matrix(square, size), size, border)


def align_matrix(landmarks, template, size=64):
    """The 2x3 similarity transform (rotation, scale, shift) that carries `landmarks` onto
    `template` (fractions of the frame) scaled to `size`, by least squares (Umeyama, 1991, as
    scikit-image estimates it; written out in numpy so a device port runs the same lines)."""
    source = np.asarray(landmarks, np.float64)
    target = np.asarray(template, np.float64)[:len(source)] * size
    source_mean, target_mean = source.mean(0), target.mean(0)
    source_c, target_c = source - source_mean, target - target_mean
    covariance = target_c.T @ source_c / len(source)
    signs = np.ones(2)
    if np.linalg.det(covariance) < 0:
        signs[-1] = -1
    u, singular, vt = np.linalg.svd(covariance)
    if np.linalg.matrix_rank(covariance) == 1:  # two points: a rotation, never a reflection
        flip = np.diag([1.0, 1.0 if np.linalg.det(u) * np.linalg.det(vt) > 0 else -1.0])
        rotation = u @ flip @ vt
    else:
        rotation = u @ np.diag(signs) @ vt
    scale = (singular @ signs) / source_c.var(axis=0).sum()
    shift = target_mean - scale * rotation @ source_mean
    return np.hstack([scale * rotation, shift[:, None]]).astype(np.float32)


def align_face(image, landmarks, template, size=64):
    """The face warped so its landmarks land on the training faces' template, size x size."""
    return warp_face(image, align_matrix(landmarks, template, size), size)


def inverse_matrix(matrix):
    """The 2x3 map back of a 2x3 affine map."""
    return np.linalg.inv(np.vstack([np.asarray(matrix, np.float64), [0, 0, 1]]))[:2]


def crop_corners(matrix, size=64):
    """The crop's four corners (top-left, top-right, bottom-right, bottom-left) in the picture."""
    corners = np.array([[0, 0, 1], [size, 0, 1], [size, size, 1], [0, size, 1]], np.float64)
    return (corners @ inverse_matrix(matrix).T).astype(np.float32)


def seen_region(matrix, size, shape, area_shrink=AREA_SHRINK):
    """(x0, y0, x1, y1, shrink): the part of a picture of `shape` a crop by `matrix` reads (with
    a 2-pixel rim), and by how much it is area-averaged first (1: not)."""
    shrink = 1 / float(np.hypot(*np.asarray(matrix)[:, 0]))
    corners = crop_corners(matrix, size)
    height, width = shape[:2]
    x0, y0 = (int(np.clip(np.floor(corners[:, i].min()) - 2, 0, limit - 1))
              for i, limit in ((0, width), (1, height)))
    x1, y1 = (int(np.clip(np.ceil(corners[:, i].max()) + 2, start + 1, limit))
              for i, start, limit in ((0, x0, width), (1, y0, height)))
    return x0, y0, x1, y1, (shrink if shrink > area_shrink else 1.0)


def region_matrix(matrix, x0, y0, fx=1.0, fy=1.0):
    """`matrix` as a map from the region cut at (x0, y0) and scaled by (fx, fy)."""
    local = np.empty((2, 3), np.float64)
    local[:, 0], local[:, 1] = matrix[:, 0] / fx, matrix[:, 1] / fy
    local[:, 2] = matrix[:, 2] + matrix[:, :2] @ np.array([x0, y0], np.float64)
    return local


def seen_pixels(image, matrix, size, resize, area_shrink=AREA_SHRINK):
    """(region, its matrix): the part of `image` a crop by `matrix` reads, area-averaged first
    by `resize(region, width, height)` when the crop is much smaller (`seen_region`), and the
    2x3 map from that region onto the crop. OpenCV's resize here, the reference's numpy one on
    the device side."""
    x0, y0, x1, y1, shrink = seen_region(matrix, size, image.shape, area_shrink)
    region = np.ascontiguousarray(image[y0:y1, x0:x1])
    fx = fy = 1.0
    if shrink > 1:
        new_w, new_h = max(1, round((x1 - x0) / shrink)), max(1, round((y1 - y0) / shrink))
        fx, fy = new_w / (x1 - x0), new_h / (y1 - y0)
        region = resize(region, new_w, new_h)
    return region, region_matrix(matrix, x0, y0, fx, fy)


def warp_face(image, matrix, size=64, border="replicate"):
    """`image` mapped by the 2x3 `matrix` into size x size. Only the part of the picture the
    output sees is read, first shrunk by area averaging when it is much larger (a face in a
    3000 px photo is averaged down, not sampled); outside the picture its edges are replicated
    (as the training faces' borders were filled), or it is black (`border="black"`: a detector
    sees a face cut by the picture's edge as cut, not smeared)."""
    import cv2

    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    image = image[..., :3] if image.shape[-1] >= 3 else np.repeat(image[..., :1], 3, axis=-1)
    region, local = seen_pixels(image, matrix, size, lambda pixels, width, height: cv2.resize(
        pixels, (width, height), interpolation=cv2.INTER_AREA))
    return cv2.warpAffine(region, local, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE if border == "replicate"
                          else cv2.BORDER_CONSTANT)


def frame_matrix(box, framing, how="box", size=64):
    """The 2x3 map from a picture onto the crop of `box` framed like the training faces.

    how: "box", the detector's box mapped by the calibrated framing; "eyes", the similarity
    that puts the two eyes (the first two landmarks) on the template's (rotation, scale and
    place from the one distance a smile or an open mouth does not change; the box's `eyes`
    where a closer look placed them); "landmarks", the least-squares similarity over every
    landmark. Without landmarks, "box" is used, turned upright by the box's angle; a box with
    another detector's landmarks than the template's (an MTCNN face in the default search:
    five points against BlazeFace's four) is aligned by the eyes, which every detector gives
    first.
    """
    if how != "box" and box.landmarks is not None and framing.template is not None:
        if how == "landmarks" and len(box.landmarks) == len(framing.template):
            return align_matrix(box.landmarks, framing.template, size)
        eyes = box.landmarks[:2] if box.eyes is None else box.eyes
        return align_matrix(eyes, framing.template[:2], size)
    matrix = square_matrix(framing.square(box), size)
    if box.angle:  # a face found turned: the square lies upright about the box's centre
        (cx, cy), angle = box.center, np.radians(-box.angle)
        alpha, beta = np.cos(angle), np.sin(angle)  # OpenCV's getRotationMatrix2D
        upright = np.array([[alpha, beta, (1 - alpha) * cx - beta * cy],
                            [-beta, alpha, beta * cx + (1 - alpha) * cy], [0, 0, 1]])
        matrix = matrix @ upright
    return matrix.astype(np.float32)


def frame_face(image, box, framing, how="box", size=64, warp=warp_face,
               epsilon=LIGHTING_EPSILON):
    """(crop, its four corners in the picture): the face cut and lit like the training faces.
    warp(image, matrix, size): the crop's resampling (OpenCV's; the on-device reference passes
    its numpy port)."""
    matrix = frame_matrix(box, framing, how, size)
    return match_lighting(warp(image, matrix, size), framing, epsilon), crop_corners(matrix, size)


def match_lighting(crop, framing, epsilon=LIGHTING_EPSILON):
    """The crop with its pixel mean and standard deviation moved to the training faces'
    (`epsilon` keeps a flat crop's gain finite)."""
    if framing.mean is None or framing.std is None:
        return crop
    pixels = crop.astype(np.float32)
    gain = framing.std / (pixels.std() + epsilon)
    scaled = (pixels - pixels.mean()) * gain + framing.mean
    return np.clip(np.round(scaled), 0, 255).astype(np.uint8)
