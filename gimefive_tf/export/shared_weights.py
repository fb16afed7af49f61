"""The on-device classifier: the face pipeline's decision and its heatmap in one TFLite graph
whose weights are stored once, as int8.

The `cam` TFLite model writes the explanation's backward pass as forward ops, and TFLite stores
every weight in the layout of the op that reads it: a convolution's backward pass reads its
kernel transposed, so the converter folds a second, transposed copy of every kernel after the
explained layer into the file (74 MB in float, 18.7 MB with dynamic-range quantization). Here
each kernel is one int8 constant (symmetric, one scale per output channel, as TFLite quantizes
weights) dequantized by the graph at run time, and the forward and backward ops both read that
tensor: 10.5 M weights make a 10.6 MB file that decides and explains. The dequantization goes
through a gather whose index depends on the input, so the converter cannot fold it back into
float constants. Activations stay float (full int8 quantization of the backward ops loses the
decision: 50% agreement with Keras).

Only GiMeFive-style models are written out: Preprocess, single-conv ConvBlocks, pooling,
dropout, global average pooling and dense layers in a chain.
"""

import numpy as np

from gimefive_tf.errors import GiMeFiveError

NOT_GIMEFIVE = ("the on-device bundle writes GiMeFive-style models only (conv blocks, pooling, "
                "dropout, global average pooling, dense layers in a chain); {layer} is not one")


def quantize(kernel):
    """(int8 weights, float32 scale per output channel): symmetric, the last axis the outputs."""
    kernel = np.asarray(kernel, np.float32)
    scale = np.abs(kernel).reshape(-1, kernel.shape[-1]).max(axis=0) / 127.0
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    return np.clip(np.round(kernel / scale), -127, 127).astype(np.int8), scale


class SharedWeights:
    """The kernels of `layers` (those the backward pass reads too) as int8 constants,
    dequantized once per call into a tensor that every op reading the kernel shares (see the
    module); any other kernel is read as it is (the converter quantizes it, and its ops keep
    their fast kernels: a convolution whose filter is computed at run time has none)."""

    def __init__(self, layers):
        self.stored = {}
        for layer in layers:
            for kernel in _kernels(layer):
                self.stored[id(kernel)] = quantize(kernel.numpy())

    def bind(self, pixels):
        """Start a call: the gather index that depends on the input (always 0)."""
        import tensorflow as tf

        self._index = tf.minimum(tf.cast(tf.reduce_max(tf.cast(pixels, tf.float32)) < -1.0,
                                         tf.int32), 0)
        self._cache = {}

    def __call__(self, variable):
        import tensorflow as tf

        key = id(variable)
        if key not in self.stored:
            return variable
        if key not in self._cache:
            weights, scale = self.stored[key]
            stored = tf.gather(tf.constant(weights[None]), self._index)
            self._cache[key] = tf.cast(stored, tf.float32) * tf.constant(scale)
        return self._cache[key]


def _kernels(layer):
    import keras

    from gimefive_tf.layers import ConvBlock

    if isinstance(layer, keras.layers.Dense):
        return [layer.kernel]
    if isinstance(layer, ConvBlock):
        return [conv.kernel for conv in layer.conv_layers]
    return []


def _forward_known(layer):
    """Whether `forward` writes out this layer."""
    import keras

    from gimefive_tf.layers import ConvBlock, Preprocess

    if isinstance(layer, keras.layers.Dense):
        return layer.activation in (keras.activations.relu, keras.activations.linear)
    if isinstance(layer, ConvBlock):
        return layer.convs == 1 and layer.pool is None and layer.drop is None \
            and layer.activation == "relu" and layer.strides == 1
    return isinstance(layer, (keras.layers.InputLayer, keras.layers.Dropout, Preprocess,
                              keras.layers.MaxPooling2D, keras.layers.GlobalAveragePooling2D))


def check_writable(model, layer_name):
    """Raise GiMeFiveError unless every layer of `model` is written out here, and the explained
    layer's head too (before anything is traced)."""
    from gimefive_tf.export import _backward_known

    for layer in model.layers:
        if not _forward_known(layer):
            raise GiMeFiveError(NOT_GIMEFIVE.format(layer=f"{layer.name} "
                                                          f"({type(layer).__name__})"))
    after = explained_head(model, layer_name)
    if not after or not all(_backward_known(l, l is after[-1]) for l in after):
        raise GiMeFiveError(NOT_GIMEFIVE.format(layer=f"the head after {layer_name}"))


def forward(layer, x, weights):
    """One layer of a GiMeFive-style chain at inference (`check_writable` first), its kernels
    read through `weights`."""
    import keras
    import tensorflow as tf

    from gimefive_tf.export import norm_scale
    from gimefive_tf.layers import ConvBlock

    if isinstance(layer, (keras.layers.InputLayer, keras.layers.Dropout)):
        return x
    if isinstance(layer, keras.layers.Dense):
        y = tf.matmul(x, weights(layer.kernel))
        y = y + layer.bias if layer.use_bias else y
        return tf.nn.relu(y) if layer.activation is keras.activations.relu else y
    if not isinstance(layer, ConvBlock):
        return layer(x)  # Preprocess and pooling: no weights
    conv = layer.conv_layers[0]
    y = tf.nn.conv2d(x, weights(conv.kernel), 1, "SAME")
    y = y + conv.bias if conv.use_bias else y
    if layer.norm_layers:
        norm = layer.norm_layers[0]
        y = (y - norm.moving_mean) * norm_scale(norm) + (norm.beta if norm.center else 0.0)
    return tf.nn.relu(y)


def explained_head(model, layer_name):
    """The layers after `layer_name`, whose backward pass the explanation writes out."""
    names = [layer.name for layer in model.layers]
    if layer_name not in names:
        raise GiMeFiveError(f"the model has no layer {layer_name}")
    return model.layers[names.index(layer_name) + 1:]


def decide_and_explain(model, pixels, method, layer_name, weights):
    """(probabilities [N, 6], heatmap [N, H, W]): the mirror-averaged decision and `method`'s map
    of it on `layer_name`, every kernel read through `weights` (`SharedWeights` of the layers
    after it); `check_writable` first."""
    import tensorflow as tf

    from gimefive_tf.decision import cam, finish_maps, probabilities, views
    from gimefive_tf.export import _backward

    after = explained_head(model, layer_name)
    explained = len(model.layers) - len(after) - 1
    weights.bind(pixels)
    count = tf.shape(pixels)[0]
    x = views(tf.cast(pixels, tf.float32), True)
    outputs = []
    for index, layer in enumerate(model.layers):
        x = forward(layer, x, weights)
        if index >= explained:
            outputs.append(x)
    decided = probabilities(outputs[-1], count, True)
    outputs = [output[:count] for output in outputs]  # the crops as given are explained
    grad = tf.gather(tf.transpose(weights(after[-1].kernel)), tf.argmax(decided, axis=-1))
    for index in range(len(after) - 2, -1, -1):
        grad = _backward(after[index], outputs[index], outputs[index + 1], grad,
                         kernel=weights)
    return decided, finish_maps(cam(method, outputs[0], grad), pixels.shape[1:3])
