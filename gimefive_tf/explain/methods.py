"""The explanation methods and the one entry point, `heatmaps(model, images, method=...)`.

Class-activation methods differ only in `channel_weights`. Saliency and SmoothGrad (input
gradients) come from tf-keras-vis, which supports Keras 3 on TensorFlow.
"""

import numpy as np

from gimefive_tf.errors import GiMeFiveError
from gimefive_tf.explain.base import CamExplainer, Explainer


class GradCam(CamExplainer):
    """Grad-CAM (Selvaraju et al., 2017): channel weight = spatial mean of the gradient."""

    name = "gradcam"

    def channel_weights(self, activations, gradients, images, targets):
        import tensorflow as tf

        return tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)


class GradCamPlusPlus(CamExplainer):
    """Grad-CAM++ (Chattopadhay et al., 2018): positive gradients weighted by alpha."""

    name = "gradcam++"

    def channel_weights(self, activations, gradients, images, targets):
        import tensorflow as tf

        second, third = gradients ** 2, gradients ** 3
        total = tf.reduce_sum(activations, axis=(1, 2), keepdims=True)
        denominator = 2 * second + total * third
        alphas = second / tf.where(denominator != 0, denominator, tf.ones_like(denominator))
        return tf.reduce_sum(alphas * tf.nn.relu(gradients), axis=(1, 2), keepdims=True)


class LayerCam(CamExplainer):
    """LayerCAM (Jiang et al., 2021): every position weighted by its own positive gradient."""

    name = "layercam"

    def channel_weights(self, activations, gradients, images, targets):
        import tensorflow as tf

        return tf.nn.relu(gradients)


class ScoreCam(CamExplainer):
    """Score-CAM (Wang et al., 2020): a channel's weight is the target's softmax score when the
    image is masked by that channel's upsampled, normalized map. No gradients needed.

    max_channels: use only the most varied channels (Faster Score-CAM); None uses all.
    """

    name = "scorecam"
    needs_gradients = False
    max_channels = None

    def channel_weights(self, activations, gradients, images, targets):
        import tensorflow as tf

        activations = activations.numpy()
        count, _, _, channels = activations.shape
        weights = np.zeros((count, 1, 1, channels), np.float32)
        for i in range(count):
            maps = activations[i]
            chosen = np.arange(channels)
            if self.max_channels and self.max_channels < channels:
                chosen = np.argsort(maps.reshape(-1, channels).var(0))[::-1][: self.max_channels]
            masks = tf.image.resize(maps[..., chosen], self.size, method="bilinear").numpy()
            low, high = masks.min((0, 1), keepdims=True), masks.max((0, 1), keepdims=True)
            masks = np.where(high > low, (masks - low) / np.where(high > low, high - low, 1), 0)
            masked = images[i][None] * np.transpose(masks, (2, 0, 1))[..., None]
            scores = []
            for start in range(0, len(masked), self.batch_size):
                logits = self.model(masked[start:start + self.batch_size], training=False)
                scores.append(tf.nn.softmax(logits, axis=-1).numpy()[:, targets[i]])
            weights[i, 0, 0, chosen] = np.concatenate(scores)
        return weights


class FasterScoreCam(ScoreCam):
    """Faster Score-CAM: Score-CAM over the 32 channels with the largest spatial variance."""

    name = "faster-scorecam"
    max_channels = 32


class Cam(CamExplainer):
    """CAM (Zhou et al., 2016) for heads of global average pooling then one dense layer: the
    weights are that dense layer's kernel column of the target."""

    name = "cam"
    needs_gradients = False

    def __init__(self, model, layer=None, batch_size=64):
        import keras

        head = model.layers[-1]
        pool = _inbound_layer(model, head)
        if not (isinstance(head, keras.layers.Dense)
                and isinstance(pool, keras.layers.GlobalAveragePooling2D)):
            raise GiMeFiveError(
                "cam needs a head of global average pooling followed by one dense layer (e.g. "
                "create_model('gimefive', fc_depth=1)); use gradcam for this model")
        if layer is not None and layer != _inbound_layer(model, pool).name:
            raise GiMeFiveError("cam explains the map that enters global pooling; omit --layer")
        super().__init__(model, _inbound_layer(model, pool).name, batch_size)
        self.kernel = self.model.layers[-1].kernel.numpy()

    def channel_weights(self, activations, gradients, images, targets):
        return self.kernel[:, targets].T[:, None, None, :]


class Saliency(Explainer):
    """Vanilla gradient saliency (Simonyan et al., 2014): |d score / d pixel|, max over channels."""

    name = "saliency"
    smooth_samples = 0

    def raw_maps(self, images, targets):
        from tf_keras_vis.saliency import Saliency as VisSaliency
        from tf_keras_vis.utils.scores import CategoricalScore

        import warnings

        saliency = VisSaliency(self.model, clone=False)
        with warnings.catch_warnings():  # tf-keras-vis passes inputs as a list; Keras notes it
            warnings.filterwarnings("ignore", message="The structure of `inputs`")
            return saliency(CategoricalScore(list(map(int, targets))), images,
                            smooth_samples=self.smooth_samples, smooth_noise=0.2,
                            normalize_map=False)


class SmoothGrad(Saliency):
    """SmoothGrad (Smilkov et al., 2017): saliency averaged over 20 noisy copies (sigma 20%)."""

    name = "smoothgrad"
    smooth_samples = 20


METHODS = {cls.name: cls for cls in (GradCam, GradCamPlusPlus, ScoreCam, FasterScoreCam, LayerCam,
                                     Saliency, SmoothGrad, Cam)}


def make_explainer(model, method="gradcam", layer=None, batch_size=64):
    """An Explainer for `method` (one of METHODS) bound to a private clone of `model`."""
    if method not in METHODS:
        raise GiMeFiveError(f"method={method!r} is not allowed; choose one of "
                            f"{', '.join(METHODS)}")
    if layer is not None and not issubclass(METHODS[method], CamExplainer):
        raise GiMeFiveError(f"{method} works on input pixels; it takes no layer")
    return METHODS[method](model, layer=layer, batch_size=batch_size)


def heatmaps(model, images, method="gradcam", target=None, layer=None, batch_size=64):
    """(N, H, W) float heatmaps in [0, 1] at input resolution (a single image gives (H, W)).

    target: None (each image's predicted class), one emotion (name or index) for all, or one per
    image. layer: the feature map for CAM methods (default: the last conv stage).
    """
    maps, _ = make_explainer(model, method, layer, batch_size)(images, target)
    return maps


def _inbound_layer(model, layer):
    """The layer whose output feeds `layer` in a functional model (single input)."""
    inputs = layer.input
    tensor = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        raise GiMeFiveError(f"cannot trace the input of layer {layer.name}")
    return history[0]
