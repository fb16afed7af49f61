"""The tf.data input pipeline: parallel decode -> RGB uint8 -> resize -> cache -> shuffle -> batch.

`decode_image` is the one place encoded bytes become model pixels; training, evaluation, scores
and the exported serving graph all call it, so they cannot drift apart.
"""

import numpy as np
import tensorflow as tf

from gimefive_tf.errors import GiMeFiveError

AUTOTUNE = tf.data.AUTOTUNE
DEFAULT_IMAGE_SIZE = 64


def decode_image(encoded, image_size=DEFAULT_IMAGE_SIZE):
    """JPEG/PNG/BMP/GIF bytes (any channel count, 8 or 16 bit, any size) -> uint8 RGB, resized."""
    image = tf.io.decode_image(encoded, channels=3, dtype=tf.uint8, expand_animations=False)
    return resize_pixels(image, image_size)


def resize_pixels(image, image_size=DEFAULT_IMAGE_SIZE):
    """uint8 (H, W, 1|3) -> uint8 (size, size, 3), bilinear with antialiasing like PIL's resize."""
    image = tf.convert_to_tensor(image)
    if image.shape.rank == 3 and image.shape[-1] == 1:
        image = tf.image.grayscale_to_rgb(image)
    shape = tf.shape(image)
    needs_resize = tf.logical_or(shape[0] != image_size, shape[1] != image_size)

    def resized():
        out = tf.image.resize(image, (image_size, image_size), method="bilinear", antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(out), 0, 255), tf.uint8)

    image = tf.cond(needs_resize, resized, lambda: tf.cast(image, tf.uint8))
    return tf.ensure_shape(image, (image_size, image_size, 3))


def readable_mask(paths):
    """(ok, reasons): which files the pipeline's decoder can read, decoding all in parallel."""
    if not paths:
        return np.zeros(0, bool), []
    indices = tf.data.Dataset.from_tensor_slices((np.arange(len(paths)), list(paths)))
    checked = indices.map(
        lambda i, p: (i, tf.shape(tf.io.decode_image(tf.io.read_file(p), channels=3,
                                                     expand_animations=False))),
        num_parallel_calls=AUTOTUNE, deterministic=False).ignore_errors()
    from gimefive_tf.quiet import native_stderr_silenced

    ok = np.zeros(len(paths), bool)
    with native_stderr_silenced():  # libjpeg says "Improper call to JPEG library" on fd 2
        for index, _ in checked.as_numpy_iterator():
            ok[index] = True
    reasons = ["" if good else "not a readable image (empty, truncated or not an image)"
               for good in ok]
    return ok, reasons


def make_dataset(table, batch_size=16, image_size=DEFAULT_IMAGE_SIZE, shuffle=False, seed=0,
                 cache=True, repeat=False, drop_remainder=False):
    """A batched tf.data.Dataset of (uint8 RGB images, int labels) from LabeledImages.

    cache: True caches decoded images in memory, a path caches them in that file, False none.
    shuffle reshuffles each epoch from `seed`, so a resumed run sees the same order.
    """
    _check_batch_size(batch_size)
    dataset = decoded_images(table, image_size, cache)
    if shuffle:
        dataset = dataset.shuffle(len(table), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    return dataset.batch(batch_size, drop_remainder=drop_remainder).prefetch(AUTOTUNE)


def decoded_images(table, image_size=DEFAULT_IMAGE_SIZE, cache=True):
    """Unbatched (uint8 RGB image, label) pairs, decoded in parallel and optionally cached."""
    labels = table.labels
    if table.pixels is not None:
        dataset = tf.data.Dataset.from_tensor_slices((table.pixels, labels))
        dataset = dataset.map(lambda image, label: (resize_pixels(image, image_size), label),
                              num_parallel_calls=AUTOTUNE)
    else:
        sources = table.frame["source"].tolist()
        dataset = tf.data.Dataset.from_tensor_slices((sources, labels))
        dataset = dataset.map(
            lambda path, label: (decode_image(tf.io.read_file(path), image_size), label),
            num_parallel_calls=AUTOTUNE)
    if cache:
        dataset = dataset.cache("" if cache is True else str(cache))
    return dataset


def _check_batch_size(batch_size):
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise GiMeFiveError(f"batch_size={batch_size!r} is not allowed; use an integer >= 1")


def training_stream(table, batch_size=16, image_size=DEFAULT_IMAGE_SIZE, seed=0, start_epoch=0,
                    cache=True, targets=None):
    """(dataset, steps_per_epoch): an endless stream of shuffled epochs for `model.fit`.

    The shuffle is seeded and reshuffles every epoch, and a run resumed at `start_epoch` skips
    the batches of the epochs already done, so it sees exactly what an uninterrupted run would.
    Decoding happens once; later epochs read the cache. `targets`, one float vector per image
    of the table (distillation's soft labels), are yielded instead of the int labels, in the
    same shuffled order.
    """
    _check_batch_size(batch_size)
    base = decoded_images(table, image_size, cache)
    if targets is not None:
        targets = np.asarray(targets, np.float32)
        if targets.ndim != 2 or len(targets) != len(table):
            raise GiMeFiveError(f"targets must hold one vector per image ({len(table)}), got "
                                f"shape {targets.shape}")
        base = tf.data.Dataset.zip(base, tf.data.Dataset.from_tensor_slices(targets)).map(
            lambda image_and_label, target: (image_and_label[0], target))
    steps_per_epoch = -(-len(table) // batch_size)
    stream = base.shuffle(len(table), seed=seed, reshuffle_each_iteration=True)
    stream = stream.batch(batch_size).repeat().skip(start_epoch * steps_per_epoch)
    return stream.prefetch(AUTOTUNE), steps_per_epoch


def load_arrays(table, image_size=DEFAULT_IMAGE_SIZE):
    """All images and labels of a table as numpy arrays (for evaluation and small sets)."""
    images, labels = [], []
    for batch_images, batch_labels in make_dataset(table, batch_size=256, image_size=image_size,
                                                   cache=False).as_numpy_iterator():
        images.append(batch_images)
        labels.append(batch_labels)
    if not images:
        return np.zeros((0, image_size, image_size, 3), np.uint8), np.zeros(0, np.int64)
    return np.concatenate(images), np.concatenate(labels)
