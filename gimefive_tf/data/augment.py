"""Training-time augmentation, each option seeded and switchable; the paper's best model used none.

Per-image augmentations are Keras layers placed in front of the model, so they run on the
accelerator and are inactive at inference. MixUp and CutMix mix labels too, so they run on
batches of (images, one-hot labels) in the tf.data pipeline.
"""

import dataclasses

from gimefive_tf.errors import GiMeFiveError


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """flip: random horizontal flip. rotation: max degrees either way. crop_padding: zero-pad by
    this many pixels, then crop back at a random offset. zoom: max relative scale change either
    way (a face crop framed a little tighter or looser, as a detector's crops are). erasing:
    probability of erasing a random rectangle. brightness, contrast: max relative change. mixup, cutmix: probability-free
    strengths (Beta alpha for mixup, factor for cutmix); 0 disables each."""

    flip: bool = False
    rotation: float = 0.0
    crop_padding: int = 0
    zoom: float = 0.0
    erasing: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0
    mixup: float = 0.0
    cutmix: float = 0.0

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.type is bool:
                if value not in (True, False):
                    raise GiMeFiveError(f"augment.{field.name}={value!r} must be true or false")
            elif isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise GiMeFiveError(f"augment.{field.name}={value!r} must be a number >= 0")
        for name in ("zoom", "erasing", "brightness", "contrast", "mixup", "cutmix"):
            if getattr(self, name) > 1:
                raise GiMeFiveError(f"augment.{name}={getattr(self, name)!r} must be in [0, 1]")
        if self.rotation > 180:
            raise GiMeFiveError(f"augment.rotation={self.rotation!r} must be at most 180 degrees")

    @property
    def enabled(self):
        return self != AugmentConfig()


def image_augmentation(config, image_size, seed=0):
    """A keras.Sequential of per-image augmentations for raw RGB 0-255, or None when all are off."""
    import keras

    layers = []
    if config.flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed, name="aug_flip"))
    if config.rotation:
        layers.append(keras.layers.RandomRotation(config.rotation / 360.0, fill_mode="reflect",
                                                  seed=seed + 1, name="aug_rotation"))
    if config.crop_padding:
        # Zero-pad then crop back at a random offset == a random zero-filled shift of up to
        # `crop_padding` pixels; as a translation it stays the identity at inference, where
        # Keras' RandomCrop would hand the padded size on.
        shift = float(config.crop_padding) / image_size
        layers.append(keras.layers.RandomTranslation(
            shift, shift, fill_mode="constant", interpolation="nearest", seed=seed + 2,
            name="aug_crop"))
    if config.zoom:
        layers.append(keras.layers.RandomZoom((-config.zoom, config.zoom), fill_mode="reflect",
                                              seed=seed + 8, name="aug_zoom"))
    if config.brightness:
        layers.append(keras.layers.RandomBrightness(config.brightness, value_range=(0, 255),
                                                    seed=seed + 3, name="aug_brightness"))
    if config.contrast:
        layers.append(keras.layers.RandomContrast(config.contrast, value_range=(0, 255),
                                                  seed=seed + 4, name="aug_contrast"))
    if config.erasing:
        layers.append(keras.layers.RandomErasing(config.erasing, value_range=(0, 255),
                                                 seed=seed + 5, name="aug_erasing"))
    if not layers:
        return None
    return keras.Sequential(layers, name="augmentation")


def batch_mixer(config, seed=0):
    """A function (images, one_hot_labels) -> mixed batch for tf.data, or None when off."""
    import keras

    mixers = []
    if config.mixup:
        mixers.append(keras.layers.MixUp(alpha=config.mixup, seed=seed + 6))
    if config.cutmix:
        mixers.append(keras.layers.CutMix(factor=config.cutmix, seed=seed + 7))
    if not mixers:
        return None

    def mix(images, labels):
        import tensorflow as tf

        data = {"images": tf.cast(images, "float32"), "labels": labels}
        for mixer in mixers:
            data = mixer(data, training=True)
        return data["images"], data["labels"]

    return mix


def with_augmentation(model, augmentation):
    """The training model: augmentation layers in front of `model` (which is shared, not copied)."""
    import keras

    if augmentation is None:
        return model
    inputs = keras.Input(model.input_shape[1:], name="pixels")
    return keras.Model(inputs, model(augmentation(inputs)), name=f"{model.name}_training")
