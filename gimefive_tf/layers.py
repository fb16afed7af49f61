"""GiMeFive's building blocks as registered, serializable Keras 3 layers.

All math goes through `keras.ops` and Keras sublayers, so the same layers (and saved `.keras`
files) run under the TensorFlow, JAX and PyTorch backends. Constructor arguments are the config.
"""

import keras
from keras import ops

from gimefive_tf.choices import ACTIVATIONS, POOLINGS, check_choice, check_rate  # noqa: F401
from gimefive_tf.errors import GiMeFiveError

# torchvision's ImageNet statistics, the ones the original GiMeFive pipeline normalized with.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# PIL's ITU-R 601-2 luma transform in 16-bit fixed point: L = (19595 R + 38470 G + 7471 B
# + 2**15) >> 16. torchvision's Grayscale goes through PIL, so this is what the paper's model saw.
_PIL_LUMA = (19595.0, 38470.0, 7471.0)


def make_pooling(pooling, name=None):
    """The 2x2 stage pooling layer: max, or average (PyTorch's adaptive average to half size)."""
    check_choice("pooling", pooling, POOLINGS)
    layer_class = keras.layers.MaxPooling2D if pooling == "max" else keras.layers.AveragePooling2D
    return layer_class(pool_size=2, name=name)


@keras.saving.register_keras_serializable(package="gimefive_tf")
class Preprocess(keras.layers.Layer):
    """Raw RGB pixels (0-255) to what the paper's network saw.

    Grayscale replicated to three channels (PIL's rounding, with a straight-through gradient so
    saliency methods still get input gradients), scaled to [0, 1], then ImageNet mean/std
    normalized per channel. Keeping this inside the model means every exported artifact takes
    plain pixels.
    """

    def __init__(self, grayscale=True, mean=IMAGENET_MEAN, std=IMAGENET_STD, **kwargs):
        super().__init__(**kwargs)
        self.grayscale = bool(grayscale)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise GiMeFiveError("Preprocess needs three means and three positive stds")

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels not in (1, 3):
            raise GiMeFiveError(f"Preprocess takes 1- or 3-channel images, got {channels} channels")
        if channels == 1 and not self.grayscale:
            raise GiMeFiveError("a 1-channel input needs grayscale=True")

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        if self.grayscale:
            if x.shape[-1] == 3:
                weights = ops.convert_to_tensor(_PIL_LUMA, dtype=self.compute_dtype)
                luma = ops.sum(x * weights, axis=-1, keepdims=True) / 65536.0
                # Forward: PIL's round-half-up; backward: identity (straight-through).
                luma = luma + ops.stop_gradient(ops.floor(luma + 0.5) - luma)
            else:
                luma = x
            x = ops.repeat(luma, 3, axis=-1)
        x = x / 255.0
        mean = ops.convert_to_tensor(self.mean, dtype=self.compute_dtype)
        std = ops.convert_to_tensor(self.std, dtype=self.compute_dtype)
        return (x - mean) / std

    def get_config(self):
        return {**super().get_config(), "grayscale": self.grayscale,
                "mean": list(self.mean), "std": list(self.std)}


@keras.saving.register_keras_serializable(package="gimefive_tf")
class ConvBlock(keras.layers.Layer):
    """3x3 conv (same padding) -> optional batch norm -> activation -> optional 2x2 pool -> dropout.

    `convs` > 1 repeats conv -> norm -> activation before pooling, as a VGG stage; with
    `shared_norm` all those convs go through one batch-norm layer, a quirk of the paper's VGG
    baseline that its parameter count depends on. The model builder uses `pooling=None,
    dropout=0` and adds pooling and dropout as separate named layers, so the activated map before
    pooling (the one Grad-CAM explains) is a named layer output.
    """

    def __init__(self, filters, kernel_size=3, strides=1, convs=1, batch_norm=True,
                 shared_norm=False, activation="relu", pooling="max", dropout=0.0,
                 use_bias=True, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.strides = int(strides)
        self.convs = int(convs)
        if self.convs < 1:
            raise GiMeFiveError(f"convs={convs!r} is not allowed; use an integer >= 1")
        self.batch_norm = bool(batch_norm)
        self.shared_norm = bool(shared_norm)
        self.activation = check_choice("activation", activation, ACTIVATIONS)
        self.pooling = None if pooling is None else check_choice("pooling", pooling, POOLINGS)
        self.dropout = check_rate("dropout", dropout)
        self.use_bias = bool(use_bias)

    def build(self, input_shape):
        self.conv_layers, self.norm_layers = [], []
        shape = input_shape
        for index in range(self.convs):
            conv = keras.layers.Conv2D(self.filters, self.kernel_size,
                                       strides=self.strides if index == 0 else 1,
                                       padding="same", use_bias=self.use_bias,
                                       name=f"conv{index + 1}")
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
            self.conv_layers.append(conv)
            if self.batch_norm and (index == 0 or not self.shared_norm):
                norm = keras.layers.BatchNormalization(name=f"bn{index + 1}")
                norm.build(shape)
                self.norm_layers.append(norm)
        self.act = keras.layers.Activation(self.activation, name="act")
        self.pool = None if self.pooling is None else make_pooling(self.pooling, name="pool")
        self.drop = keras.layers.Dropout(self.dropout, name="dropout") if self.dropout else None

    def call(self, inputs, training=None):
        x = inputs
        for index, conv in enumerate(self.conv_layers):
            x = conv(x)
            if self.norm_layers:
                x = self.norm_layers[min(index, len(self.norm_layers) - 1)](x, training=training)
            x = self.act(x)
        if self.pool is not None:
            x = self.pool(x)
        if self.drop is not None:
            x = self.drop(x, training=training)
        return x

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "convs": self.convs, "batch_norm": self.batch_norm,
                "shared_norm": self.shared_norm, "activation": self.activation,
                "pooling": self.pooling, "dropout": self.dropout, "use_bias": self.use_bias}


@keras.saving.register_keras_serializable(package="gimefive_tf")
class SqueezeExcite(keras.layers.Layer):
    """Channel attention: rescales each channel by a learned gate (Hu et al., 2018).

    Global average pool -> dense C/r (no bias) -> ReLU -> dense C (no bias) -> sigmoid -> scale.
    """

    def __init__(self, reduction=16, **kwargs):
        super().__init__(**kwargs)
        if isinstance(reduction, bool) or not isinstance(reduction, int) or reduction < 1:
            raise GiMeFiveError(f"reduction={reduction!r} is not allowed; use an integer >= 1")
        self.reduction = reduction

    def build(self, input_shape):
        channels = input_shape[-1]
        hidden = max(1, channels // self.reduction)
        self.squeeze = keras.layers.Dense(hidden, use_bias=False, activation="relu", name="squeeze")
        self.squeeze.build((input_shape[0], channels))
        self.excite = keras.layers.Dense(channels, use_bias=False, activation="sigmoid",
                                         name="excite")
        self.excite.build((input_shape[0], hidden))

    def call(self, inputs):
        pooled = ops.mean(inputs, axis=(1, 2))
        gate = self.excite(self.squeeze(pooled))
        return inputs * ops.expand_dims(ops.expand_dims(gate, 1), 1)

    def get_config(self):
        return {**super().get_config(), "reduction": self.reduction}


@keras.saving.register_keras_serializable(package="gimefive_tf")
class ResidualBlock(keras.layers.Layer):
    """Basic residual block (He et al., 2016): two 3x3 conv + BN, shortcut, activation after add.

    The shortcut is a 1x1 conv + BN projection whenever the stride or the width changes.
    """

    def __init__(self, filters, strides=1, activation="relu", use_bias=False, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.strides = int(strides)
        self.activation = check_choice("activation", activation, ACTIVATIONS)
        self.use_bias = bool(use_bias)

    def build(self, input_shape):
        conv = lambda kernel, strides, name: keras.layers.Conv2D(
            self.filters, kernel, strides=strides, padding="same", use_bias=self.use_bias,
            name=name)
        self.conv1 = conv(3, self.strides, "conv1")
        self.bn1 = keras.layers.BatchNormalization(name="bn1")
        self.conv2 = conv(3, 1, "conv2")
        self.bn2 = keras.layers.BatchNormalization(name="bn2")
        self.act = keras.layers.Activation(self.activation, name="act")
        self.conv1.build(input_shape)
        inner_shape = self.conv1.compute_output_shape(input_shape)
        self.bn1.build(inner_shape)
        self.conv2.build(inner_shape)
        self.bn2.build(inner_shape)
        self.projection = self.strides != 1 or input_shape[-1] != self.filters
        if self.projection:
            self.shortcut_conv = conv(1, self.strides, "shortcut_conv")
            self.shortcut_bn = keras.layers.BatchNormalization(name="shortcut_bn")
            self.shortcut_conv.build(input_shape)
            self.shortcut_bn.build(inner_shape)

    def call(self, inputs, training=None):
        x = self.act(self.bn1(self.conv1(inputs), training=training))
        x = self.bn2(self.conv2(x), training=training)
        shortcut = inputs
        if self.projection:
            shortcut = self.shortcut_bn(self.shortcut_conv(inputs), training=training)
        return self.act(x + shortcut)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "strides": self.strides,
                "activation": self.activation, "use_bias": self.use_bias}
