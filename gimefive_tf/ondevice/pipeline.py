"""What a phone app does with the bundle, step by step: numpy and Pillow around two LiteRT
interpreters. Every number comes from the bundle's `pipeline.json` (see its rules). The steps
that are plain arithmetic are the library's own functions (anchors, decoding, the pyramid and
its blending, suppression, turned views, the eye alignment, the crop's region, lighting), called
with the bundle's numbers, so the two pipelines cannot drift apart; what the library does with
OpenCV (resizing, the crop's warp) is written out here in numpy. Nothing imports TensorFlow,
Keras or OpenCV: this module is the template of a port (Kotlin, Swift, JavaScript) as well as
its reference.
"""

import json
import pathlib
import typing

import numpy as np

from gimefive_tf.analyze import NO_FACE, FaceResult
from gimefive_tf.errors import GiMeFiveError
from gimefive_tf.faces.boxes import moved
from gimefive_tf.faces.detectors import (anchor_centers, decode_view, pyramid_faces,
                                         pyramid_views, tensor_indices)
from gimefive_tf.faces.framing import Framing, frame_face, inverse_matrix, seen_pixels
from gimefive_tf.faces.search import reported, surest_turn
from gimefive_tf.faces.spec import SPEC_FILE, SPEC_FORMAT, SPEC_VERSION
from gimefive_tf.litert import TFLiteModel, load_interpreter
from gimefive_tf.pictures import decode_with_pillow, upright


class BundleError(GiMeFiveError):
    """A bundle that is missing, unreadable or of another format."""


def read_spec(folder):
    """The bundle's specification, checked for its format and version."""
    path = pathlib.Path(folder) / SPEC_FILE
    try:
        spec = json.loads(path.read_text())
    except (OSError, ValueError):
        raise BundleError(f"{folder} is not an on-device bundle (no readable {SPEC_FILE}); "
                          "write one with python -m gimefive_tf.export --formats mobile") \
            from None
    if not isinstance(spec, dict) or spec.get("format") != SPEC_FORMAT or \
            spec.get("version") != SPEC_VERSION:
        raise BundleError(f"{path} is not a version {SPEC_VERSION} {SPEC_FORMAT} specification")
    return spec


def bundle_file(folder, name):
    """The path of one of the bundle's files, which must be there."""
    path = pathlib.Path(folder) / name
    if not path.is_file():
        raise BundleError(f"the bundle lacks {name}")
    return path


# ------------------------------------------------------------------------------ pictures

def read_picture(path):
    """A picture file as RGB uint8 decoded by Pillow, its EXIF orientation applied (None when
    unreadable)."""
    try:
        data = pathlib.Path(path).read_bytes()
    except OSError:
        return None
    image = decode_with_pillow(data)
    return None if image is None else upright(image, data)


def resized(image, width, height, cell=None):
    """RGB uint8 resized: shrunk by exact area averaging, enlarged bilinearly (pixel centres at
    +0.5), each result rounded once; the rules OpenCV's INTER_AREA and INTER_LINEAR follow.
    cell: picture pixels per output pixel when shrinking (default: the sides' ratio; the
    search's scaled copy uses 1 / its scale, as the picture's `resize` rule says)."""
    image = np.asarray(image)
    if (height, width) == image.shape[:2]:
        return image
    pixels = image.astype(np.float64)
    for axis, size in ((0, height), (1, width)):
        pixels = _resample(pixels, axis, size, cell)
    return np.clip(np.round(pixels), 0, 255).astype(np.uint8)


def _resample(pixels, axis, size, cell=None):
    """One axis of `resized`, in float."""
    length = pixels.shape[axis]
    pixels = np.moveaxis(pixels, axis, 0)
    if size < length:  # the integral of the row between each output pixel's edges
        cell = length / size if cell is None else cell
        edges = np.minimum(np.arange(size + 1) * cell, length)
        whole = np.minimum(np.floor(edges).astype(np.int64), length - 1)
        total = np.concatenate([np.zeros((1,) + pixels.shape[1:]), np.cumsum(pixels, axis=0)])
        fraction = (edges - whole).reshape((-1,) + (1,) * (pixels.ndim - 1))
        integral = total[whole] + fraction * pixels[whole]
        spans = (edges[1:] - edges[:-1]).reshape((-1,) + (1,) * (pixels.ndim - 1))
        result = (integral[1:] - integral[:-1]) / spans
    elif size > length:
        centres = np.clip((np.arange(size) + 0.5) * (length / size) - 0.5, 0, length - 1)
        low = np.floor(centres).astype(np.int64)
        high = np.minimum(low + 1, length - 1)
        weight = (centres - low).reshape((-1,) + (1,) * (pixels.ndim - 1))
        result = pixels[low] * (1 - weight) + pixels[high] * weight
    else:
        result = pixels
    return np.moveaxis(result, 0, axis)


# ------------------------------------------------------------------------------ detector

class FaceDetector:
    """BlazeFace over the pyramid of views the specification describes (`detector`)."""

    def __init__(self, folder, spec):
        self.spec = spec["detector"]
        self.lite = load_interpreter(bundle_file(folder, self.spec["file"]))
        self.input, self.score_output, self.box_output = tensor_indices(self.lite)
        self.size = int(self.spec["input_size"])
        self.anchors = anchor_centers(self.size, self.spec["anchors"]["strides"],
                                      self.spec["anchors"]["per_stride"])

    def view(self, square, min_score):
        """One square view's detections, in fractions of the view (`decode_view`)."""
        pixels = resized(square, self.size, self.size)
        norm = self.spec["normalization"]
        self.lite.set_tensor(self.input, pixels[None].astype(np.float32) * norm["scale"]
                             + norm["offset"])
        self.lite.invoke()
        return decode_view(self.lite.get_tensor(self.box_output)[0],
                           self.lite.get_tensor(self.score_output)[0, :, 0], self.anchors,
                           self.size, len(self.spec["keypoints"]), min_score,
                           self.spec["logit_clip"])

    def __call__(self, image):
        """Faces (Boxes) in an RGB picture, surest first."""
        pyramid, rule = self.spec["pyramid"], self.spec["blend"]
        views = [(x0, y0, size, self.view(square, self.spec["min_score"]))
                 for x0, y0, size, square in
                 pyramid_views(image, pyramid["levels"], pyramid["min_tile"])]
        return pyramid_faces(views, self.spec["keypoints_kept"], min_iou=rule["min_iou"],
                             min_blend=rule["min_score"], min_cover=rule["min_cover"])


def find_faces(detector, image, spec, max_side=None, turned=True):
    """Every face of an RGB picture, largest first (the specification's `picture` and `faces`)."""
    rules = spec["faces"]
    max_side = spec["picture"]["max_side"] if max_side is None else max_side
    height, width = image.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    search = image
    if scale < 1:
        search = resized(image, int(round(width * scale)), int(round(height * scale)),
                         cell=1 / scale)
    faces = detector(search)
    if turned and not faces:
        faces = surest_turn(detector, search, rules["turned"]["quarter_turns"])
    if scale < 1:
        faces = [moved(face, 1 / scale) for face in faces]
    duplicates = rules["duplicates"]
    return reported(faces, search.shape[:2], 1 / scale, rules["min_side"], rules["min_visible"],
                    min_iou=duplicates["min_iou"], min_cover=duplicates["min_cover"])


# ------------------------------------------------------------------------------ framing

def framing_of(spec):
    """The specification's framing and lighting as the library's Framing."""
    rules, lighting = spec["framing"], spec["lighting"]
    return Framing(rules["square"]["scale"], rules["square"]["dx"], rules["square"]["dy"],
                   None if rules["template"] is None else tuple(map(tuple, rules["template"])),
                   lighting["mean"], lighting["std"])


def warp(image, matrix, size, area_shrink):
    """The picture mapped by `matrix` into a size x size crop: bilinear, edges replicated
    (OpenCV's warpAffine, in numpy); the part the crop sees is area-averaged first when the crop
    is much smaller (`seen_pixels`)."""
    region, local = seen_pixels(image, matrix, size, resized, area_shrink)
    back = inverse_matrix(local)
    v, u = np.mgrid[0:size, 0:size].astype(np.float64)
    sx = back[0, 0] * u + back[0, 1] * v + back[0, 2]
    sy = back[1, 0] * u + back[1, 1] * v + back[1, 2]
    left, top = np.floor(sx), np.floor(sy)
    ax, ay = (sx - left)[..., None], (sy - top)[..., None]
    height, width = region.shape[:2]
    left, top = left.astype(np.int64), top.astype(np.int64)
    xs = np.clip(left, 0, width - 1), np.clip(left + 1, 0, width - 1)
    ys = np.clip(top, 0, height - 1), np.clip(top + 1, 0, height - 1)
    pixels = region.astype(np.float64)
    upper = pixels[ys[0], xs[0]] * (1 - ax) + pixels[ys[0], xs[1]] * ax
    lower = pixels[ys[1], xs[0]] * (1 - ax) + pixels[ys[1], xs[1]] * ax
    return np.clip(np.round(upper * (1 - ay) + lower * ay), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------ the pipeline

class Face(typing.NamedTuple):
    """One face the pipeline found: what an app draws and reports."""

    box: object  # a faces.Box in the picture's pixels
    crop: np.ndarray  # the framed, lit crop the model saw
    corners: np.ndarray  # the crop's four corners in the picture
    probabilities: np.ndarray  # the six emotions' scores
    heatmap: np.ndarray  # where the decision looked, over the crop


class OnDevicePipeline:
    """Picture -> faces -> crops -> six emotion scores and a heatmap each, from a bundle.

    records(picture, name) gives the records `predict --json` prints; faces(picture) the
    faces with their crops, corners in the picture and heatmaps (what an app draws).
    """

    def __init__(self, folder):
        self.folder = pathlib.Path(folder)
        self.spec = read_spec(self.folder)
        try:
            self.labels = self.spec["labels"]
            self.detector = FaceDetector(self.folder, self.spec)
            # the bundle's model: crop -> probabilities [6] and heatmap [64, 64]
            self.classifier = TFLiteModel(bundle_file(self.folder,
                                                      self.spec["classifier"]["file"]))
            self.framing = framing_of(self.spec)
        except KeyError as missing:  # a specification cut short
            raise BundleError(f"{self.folder / SPEC_FILE} lacks {missing}") from None

    def crop(self, image, face):
        """(crop, its corners in the picture): the face framed and lit as `framing` says."""
        rules = self.spec["framing"]
        return frame_face(image, face, self.framing, rules["how"], rules["size"],
                          warp=lambda picture, matrix, size: warp(picture, matrix, size,
                                                                  rules["area_shrink"]),
                          epsilon=self.spec["lighting"]["epsilon"])

    def faces(self, image, max_side=None, turned=True):
        """[Face(box, crop, corners, probabilities, heatmap)], largest first."""
        found = []
        for face in find_faces(self.detector, image, self.spec, max_side, turned):
            crop, corners = self.crop(image, face)
            outputs = self.classifier(crop)
            found.append(Face(face, crop, corners, outputs["probabilities"], outputs["heatmap"]))
        return found

    def results(self, image, name="image"):
        """One FaceResult per face (the records predict prints); a picture without a face
        gives one result with the reason."""
        results = [FaceResult(name, index, face.to_list(), face.landmarks,
                              self.labels[int(np.argmax(probabilities))],
                              dict(zip(self.labels, map(float, probabilities))),
                              angle=face.angle or None, crop=crop, heatmap=heatmap,
                              corners=corners)
                   for index, (face, crop, corners, probabilities, heatmap)
                   in enumerate(self.faces(image))]
        return results or [FaceResult(name, reason=NO_FACE)]

    def records(self, image, name="image", digits=4):
        """The JSON records of `results`: input, face, box, emotion, scores, landmarks (and
        angle), or the reason there is no face."""
        return [result.to_dict(digits) for result in self.results(image, name)]
