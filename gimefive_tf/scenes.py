"""Pictures with a face at a known place: aligned face crops shown as a camera would see them.

Framing calibration, the faces-in-scenes benchmark and the face-pipeline tests all need photos
whose true face frame is known. `compose` puts an aligned training crop (with context grown
around it) into a background at a chosen size, place, rotation and lighting, and returns the
picture with the exact square the crop occupies, so a detector's box can be compared with it.
"""

import dataclasses
import functools

import numpy as np

# Face-free photos that ship with scikit-image (camera and astronaut show people: left out).
BACKGROUND_PHOTOS = ("brick", "chelsea", "clock", "coffee", "coins", "grass", "gravel", "horse",
                     "hubble_deep_field", "immunohistochemistry", "moon", "page", "rocket",
                     "text", "colorwheel", "checkerboard", "logo", "retina")
# How the border around the crop is made up: smeared edges, or a blurred mirror image. A sharp
# mirror image ("reflect") puts half-faces beside the face, which no camera sees; it is there
# to show that, not used by default.
CONTEXTS = ("replicate", "blur")


@dataclasses.dataclass(frozen=True)
class Scene:
    """A picture and where its face's aligned frame lies: centre (cx, cy), side and angle
    (degrees, counter-clockwise as OpenCV's getRotationMatrix2D)."""

    picture: np.ndarray
    cx: float
    cy: float
    side: float
    angle: float = 0.0

    @property
    def square(self):
        """(x0, y0, side) of the unrotated aligned frame."""
        return self.cx - self.side / 2, self.cy - self.side / 2, self.side


@functools.lru_cache(maxsize=None)
def _photo(name):
    from skimage import data

    image = np.asarray(getattr(data, name)())
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    if image.dtype == bool:  # the horse silhouette
        image = image.astype(np.uint8) * 255
    return np.ascontiguousarray(image[..., :3])


def background(rng, width=640, height=480):
    """A face-free RGB picture: a random crop of a shipped photo, a gradient, or smooth noise."""
    import cv2

    kind = rng.integers(3)
    if kind == 0:
        photo = _photo(BACKGROUND_PHOTOS[rng.integers(len(BACKGROUND_PHOTOS))])
        scale = max(width / photo.shape[1], height / photo.shape[0]) * rng.uniform(1.0, 2.0)
        photo = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        y = rng.integers(photo.shape[0] - height + 1)
        x = rng.integers(photo.shape[1] - width + 1)
        return np.ascontiguousarray(photo[y:y + height, x:x + width])
    if kind == 1:
        start, stop = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        ramp = np.linspace(0, 1, width)[None, :, None] if rng.random() < 0.5 else \
            np.linspace(0, 1, height)[:, None, None]
        picture = start + (stop - start) * ramp
        return np.broadcast_to(picture, (height, width, 3)).astype(np.uint8)
    coarse = rng.uniform(0, 255, (rng.integers(3, 12), rng.integers(3, 12), 3)).astype(np.float32)
    picture = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(picture + rng.normal(0, 6, picture.shape), 0, 255).astype(np.uint8)


def with_context(face, context="reflect", grow=0.5):
    """The crop grown by `grow` of its side on every side, the new border made from the face."""
    import cv2

    pad = int(round(face.shape[0] * grow))
    border = {"reflect": cv2.BORDER_REFLECT_101, "replicate": cv2.BORDER_REPLICATE,
              "blur": cv2.BORDER_REFLECT_101}[context]
    grown = cv2.copyMakeBorder(np.ascontiguousarray(face), pad, pad, pad, pad, border)
    if context == "blur":
        blurred = cv2.GaussianBlur(grown, (0, 0), face.shape[0] / 6)
        inside = np.zeros(grown.shape[:2], np.float32)
        inside[pad:-pad, pad:-pad] = 1
        grown = np.where(inside[..., None] > 0, grown, blurred)
    return grown, pad


def compose(face, backdrop, side, cx, cy, angle=0.0, context="replicate", grow=0.5, gain=1.0,
            gamma=1.0, noise=0.0):
    """Scene with `face` (an aligned square crop) drawn `side` pixels wide centred at (cx, cy),
    rotated by `angle` degrees, its context fading into `backdrop`; then lighting and noise."""
    import cv2

    grown, pad = with_context(face, context, grow)
    scale = side / face.shape[0]
    centre = (grown.shape[1] / 2, grown.shape[0] / 2)
    matrix = cv2.getRotationMatrix2D(centre, angle, scale)
    matrix[:, 2] += (cx - centre[0], cy - centre[1])
    height, width = backdrop.shape[:2]
    interpolation = cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA
    warped = cv2.warpAffine(grown, matrix, (width, height), flags=interpolation)
    # Opaque over the face and half the context, then a soft fade into the backdrop.
    alpha = np.zeros(grown.shape[:2], np.float32)
    fade = max(1, pad // 2)
    alpha[fade:-fade, fade:-fade] = 1
    alpha = cv2.GaussianBlur(alpha, (0, 0), fade / 2)
    alpha = cv2.warpAffine(alpha, matrix, (width, height), flags=cv2.INTER_LINEAR)[..., None]
    picture = warped * alpha + backdrop.astype(np.float32) * (1 - alpha)
    picture = 255 * (np.clip(picture * gain, 0, 255) / 255) ** gamma
    if noise:
        picture = picture + np.random.default_rng(int(cx * 1000 + cy)).normal(0, noise,
                                                                             picture.shape)
    return Scene(np.clip(picture, 0, 255).astype(np.uint8), float(cx), float(cy), float(side),
                 float(angle))


def tilted(picture, angle, max_side=1024):
    """A photo turned in the picture plane by `angle` degrees (counter-clockwise) on a black
    canvas grown so that nothing is cut, first scaled down to at most `max_side` (the search's
    own size: turning a large photo costs little then): a tilted head, as the tilt benchmark
    and tests show one."""
    import cv2

    scale = min(1.0, max_side / max(picture.shape[:2]))
    if scale < 1:
        picture = cv2.resize(picture, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    height, width = picture.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    size = int(height * sin + width * cos), int(height * cos + width * sin)
    matrix[:, 2] += np.divide(size, 2) - (width / 2, height / 2)
    return cv2.warpAffine(picture, matrix, size, flags=cv2.INTER_AREA)


def random_scene(face, rng, width=640, height=480, sides=(90, 240), max_angle=15.0,
                 lighting=True):
    """A Scene with `face` at a random size, place, rotation, context and lighting."""
    side = rng.uniform(*sides)
    margin = side * 0.75
    cx = rng.uniform(margin, width - margin) if width > 2 * margin else width / 2
    cy = rng.uniform(margin, height - margin) if height > 2 * margin else height / 2
    return compose(face, background(rng, width, height), side, cx, cy,
                   angle=rng.uniform(-max_angle, max_angle),
                   context=CONTEXTS[rng.integers(len(CONTEXTS))], grow=rng.uniform(0.35, 0.6),
                   gain=rng.uniform(0.6, 1.3) if lighting else 1.0,
                   gamma=rng.uniform(0.75, 1.35) if lighting else 1.0,
                   noise=rng.uniform(0, 6) if lighting else 0.0)


def compressed(picture, quality=75):
    """`picture` after a JPEG round trip at `quality` (0: as it is): a web upload or a phone's
    photo, at ordinary quality by default."""
    import cv2

    if not quality:
        return picture
    _, data = cv2.imencode(".jpg", np.ascontiguousarray(picture[..., ::-1]),
                           [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return np.ascontiguousarray(cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1])


def matching_face(boxes, scene):
    """The box that found the scene's face (its centre inside the face's frame, its side within
    a factor of two of the frame's), the closest first; None when no box did."""
    hits = []
    for box in boxes:
        cx, cy = box.center
        distance = max(abs(cx - scene.cx), abs(cy - scene.cy)) / scene.side
        if distance < 0.5 and 0.5 < box.side / scene.side < 2:
            hits.append((distance, box))
    return min(hits, key=lambda hit: hit[0])[1] if hits else None
