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
    `template` (fractions of the frame) scaled to `size`, by least squares (Umeyama)."""
    from skimage.transform import SimilarityTransform

    source = np.asarray(landmarks, np.float64)
    target = np.asarray(template, np.float64)[:len(source)] * size
    if hasattr(SimilarityTransform, "from_estimate"):
        transform = SimilarityTransform.from_estimate(source, target)
    else:
        transform = SimilarityTransform()
        transform.estimate(source, target)
    return np.asarray(transform.params[:2], np.float32)


def align_face(image, landmarks, template, size=64):
    """The face warped so its landmarks land on the training faces' template, size x size."""
    return warp_face(image, align_matrix(landmarks, template, size), size)


def crop_corners(matrix, size=64):
    """The crop's four corners (top-left, top-right, bottom-right, bottom-left) in the picture."""
    import cv2

    corners = np.array([[[0, 0], [size, 0], [size, size], [0, size]]], np.float32)
    return cv2.transform(corners, cv2.invertAffineTransform(matrix))[0]


def warp_face(image, matrix, size=64, border="replicate"):
    """`image` mapped by the 2x3 `matrix` into size x size. Only the part of the picture the
    output sees is read, first shrunk by area averaging when it is much larger (a face in a
    3000 px photo is averaged down, not sampled); outside the picture its edges are replicated
    (as the training faces' borders were filled), or it is black (`border="black"`: a detector
    sees a face cut by the picture's edge as cut, not smeared)."""
    import cv2

    shrink = 1 / float(np.hypot(*matrix[:, 0]))
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    image = image[..., :3] if image.shape[-1] >= 3 else np.repeat(image[..., :1], 3, axis=-1)
    corners = crop_corners(matrix, size)
    height, width = image.shape[:2]
    x0, y0 = (int(np.clip(np.floor(corners[:, i].min()) - 2, 0, limit - 1))
              for i, limit in ((0, width), (1, height)))
    x1, y1 = (int(np.clip(np.ceil(corners[:, i].max()) + 2, start + 1, limit))
              for i, start, limit in ((0, x0, width), (1, y0, height)))
    region = np.ascontiguousarray(image[y0:y1, x0:x1])
    fx = fy = 1.0
    if shrink > 1.5:
        new_w, new_h = max(1, round((x1 - x0) / shrink)), max(1, round((y1 - y0) / shrink))
        fx, fy = new_w / (x1 - x0), new_h / (y1 - y0)
        region = cv2.resize(region, (new_w, new_h), interpolation=cv2.INTER_AREA)
    local = np.empty((2, 3), np.float64)
    local[:, 0], local[:, 1] = matrix[:, 0] / fx, matrix[:, 1] / fy
    local[:, 2] = matrix[:, 2] + matrix[:, :2] @ np.array([x0, y0], np.float64)
    return cv2.warpAffine(region, local, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE if border == "replicate"
                          else cv2.BORDER_CONSTANT)


def frame_matrix(box, framing, how="box", size=64):
    """The 2x3 map from a picture onto the crop of `box` framed like the training faces.

    how: "box", the detector's box mapped by the calibrated framing; "eyes", the similarity
    that puts the two eyes (the first two landmarks) on the template's (rotation, scale and
    place from the one distance a smile or an open mouth does not change); "landmarks", the
    least-squares similarity over every landmark. Without landmarks, "box" is used, turned
    upright by the box's angle.
    """
    if how != "box" and box.landmarks is not None and framing.template is not None:
        points = 2 if how == "eyes" else len(box.landmarks)
        return align_matrix(box.landmarks[:points], framing.template[:points], size)
    matrix = square_matrix(framing.square(box), size)
    if box.angle:  # a face found turned: the square lies upright about the box's centre
        import cv2

        upright = cv2.getRotationMatrix2D(box.center, -box.angle, 1.0)
        matrix = matrix @ np.vstack([upright, [0, 0, 1]])
    return matrix.astype(np.float32)


def frame_face(image, box, framing, how="box", size=64):
    """(crop, its four corners in the picture): the face cut and lit like the training faces."""
    matrix = frame_matrix(box, framing, how, size)
    return match_lighting(warp_face(image, matrix, size), framing), crop_corners(matrix, size)


def match_lighting(crop, framing):
    """The crop with its pixel mean and standard deviation moved to the training faces'."""
    if framing.mean is None or framing.std is None:
        return crop
    pixels = crop.astype(np.float32)
    scaled = (pixels - pixels.mean()) * (framing.std / (pixels.std() + 1e-3)) + framing.mean
    return np.clip(np.round(scaled), 0, 255).astype(np.uint8)
