"""What the project reads as a picture: one list of formats and one decoder, used by every
reader (datasets, `predict`, `scores`, `explain`, frames), the server and `batch`.

TensorFlow decodes JPEG, PNG, BMP, GIF (the first frame) and WebP, also inside a tf.data
pipeline or a SavedModel; TIFF, PPM/PGM and a phone's MPO JPEGs are read through Pillow. Every
decoded picture is shown as a viewer shows it: a camera's EXIF orientation applied.
"""

import contextlib
import io
import pathlib

import numpy as np

from gimefive_tf.errors import GiMeFiveError

# Pillow's name of each format -> the file name endings it is found under
FORMATS = {"JPEG": (".jpg", ".jpeg"), "MPO": (), "PNG": (".png",), "BMP": (".bmp",),
           "GIF": (".gif",), "WEBP": (".webp",), "TIFF": (".tif", ".tiff"),
           "PPM": (".ppm", ".pgm")}
EXTENSIONS = tuple(ending for endings in FORMATS.values() for ending in endings)
_PILLOW_ONLY = ("TIFF", "MPO", "PPM")  # read through Pillow: TensorFlow does not decode them
# what TensorFlow's own decoder reads (a tf.data pipeline of files, the SavedModel's bytes)
TENSORFLOW_EXTENSIONS = tuple(e for name, endings in FORMATS.items() if name not in _PILLOW_ONLY
                              for e in endings)
NAMES = "JPEG, PNG, BMP, GIF, WebP, TIFF or PPM"  # for messages


def is_picture_name(path, extensions=EXTENSIONS):
    """Whether a file name ends like a picture's."""
    return pathlib.PurePath(str(path)).suffix.lower() in extensions


def read_picture(path):
    """A picture file as RGB uint8, upright."""
    try:
        data = pathlib.Path(path).read_bytes()
    except OSError:
        raise GiMeFiveError(f"{path} is not a readable image") from None
    return decode_picture(data, path)


def decode_picture(data, name="the data"):
    """Encoded picture bytes (any of FORMATS) as RGB uint8, upright: the one decoder of files,
    uploads and requests."""
    import tensorflow as tf

    from gimefive_tf.quiet import native_stderr_silenced

    try:
        with native_stderr_silenced():  # libjpeg says "Improper call..." there; we say why
            if data[:2] == b"\xff\xd8":  # JPEG: the accurate DCT, the pixels Pillow, browsers
                image = tf.io.decode_jpeg(  # and phones decode (the fast one is 16 levels off)
                    data, channels=3, dct_method="INTEGER_ACCURATE").numpy()
            else:
                image = tf.io.decode_image(data, channels=3, expand_animations=False).numpy()
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError):
        image = decode_with_pillow(data, _PILLOW_ONLY)  # TIFF and the like: not TensorFlow's
        if image is None:
            raise GiMeFiveError(f"{name} is not a readable image") from None
    return upright(image, data)


@contextlib.contextmanager
def open_picture(source):
    """Pillow's Image.open, its warnings kept off the user's stderr while the picture is open:
    a large photo (DecompressionBombWarning) is read as it is, where size matters the caller's
    own limit says so once (the server's MAX_PIXELS), and corrupt EXIF is read as no EXIF;
    nothing there for the user to act on."""
    import warnings

    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Image.open(source) as picture:
            yield picture


def format_of(data):
    """(Pillow's format name, (width, height)) from the header alone, or None when the bytes are
    no picture; a picture too large to decode safely raises Pillow's DecompressionBombError."""
    from PIL import UnidentifiedImageError

    try:
        with open_picture(io.BytesIO(data)) as header:
            return header.format, header.size
    except (UnidentifiedImageError, OSError, ValueError):
        return None


def decode_with_pillow(data, formats=None):
    """Encoded picture bytes decoded by Pillow as RGB uint8, as stored (None when unreadable, or
    not of `formats`, Pillow's names): the decoder of the formats TensorFlow does not read, and
    all a device without TensorFlow has (`gimefive_tf.ondevice`)."""
    try:
        with open_picture(io.BytesIO(data)) as picture:
            if formats is not None and picture.format not in formats:
                return None
            return np.asarray(picture.convert("RGB"))
    except Exception:  # not an image Pillow knows either
        return None


def upright(image, data):
    """The picture as a viewer shows it: a camera's EXIF orientation applied (a phone stores a
    portrait sideways and says so in EXIF; a face on its side is not found)."""
    if data[:2] != b"\xff\xd8":  # only JPEGs carry EXIF here
        return image
    try:
        with open_picture(io.BytesIO(data)) as picture:
            orientation = picture.getexif().get(0x0112, 1)
    except Exception:  # unreadable EXIF: the pixels as stored
        return image
    turns = {3: 2, 6: 3, 8: 1}  # EXIF code -> quarter turns counter-clockwise
    if orientation in (2, 4, 5, 7):  # mirrored codes: flip, then turn
        image = image[:, ::-1]
        orientation = {2: 1, 4: 3, 5: 8, 7: 6}[orientation]
    return np.ascontiguousarray(np.rot90(image, turns.get(orientation, 0)))


def picture_files(folder, extensions=EXTENSIONS):
    """Every picture file under `folder` (recursive, sorted), links to nowhere included so that
    they are listed as unreadable rather than silently missing."""
    return sorted(p for p in pathlib.Path(folder).rglob("*") if p.suffix.lower() in extensions
                  and (p.is_file() or p.is_symlink() and not p.exists()))


def is_glob(text):
    """Whether `text` is a glob pattern (a path the shell left with *, ? or [ in it)."""
    return any(c in str(text) for c in "*?[")


def collect(paths, extensions=EXTENSIONS):
    """[path]: the one input collector of the commands that read pictures: each file as given,
    each folder's pictures (`picture_files`), each glob pattern's pictures (a pattern the shell
    left as it is: `'photos/*.jpg'`, `**` crossing folders); a folder or pattern without one, or
    a path that does not exist, is an error."""
    import glob

    found = []
    for path in map(pathlib.Path, paths):
        if not path.exists() and is_glob(path):
            matched = [pathlib.Path(m) for m in sorted(glob.glob(str(path), recursive=True))]
            pictures = [m for m in matched if m.is_file() and m.suffix.lower() in extensions]
            if not pictures:
                raise GiMeFiveError(f"{path} matches no picture (only {len(matched)} other "
                                    f"file(s) or folder(s); pictures: {NAMES})")
            found += pictures
        elif path.is_dir():
            pictures = picture_files(path, extensions)
            if not pictures:
                raise GiMeFiveError(f"no images in {path} (pictures: {NAMES})")
            found += pictures
        elif path.is_file():
            found.append(path)
        else:
            raise GiMeFiveError(f"{path} does not exist; pass picture files or folders")
    return found
