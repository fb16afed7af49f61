"""The explanation methods and the one entry point, `heatmaps(model, images, method=...)`.

The Grad-CAM family (Grad-CAM, Grad-CAM++, LayerCAM, Score-CAM), saliency and SmoothGrad are
tf-keras-vis's (it supports Keras 3 on TensorFlow); what is ours is what it does not have: CAM
for pooling-dense heads, the mirror-view decision of the face pipeline, one target per face
from the same forward pass, and the shared resizing and normalization of `Explainer`.
"""

import functools
import warnings

import numpy as np

from gimefive_tf.choices import check_choice
from gimefive_tf.decision import IN_GRAPH_METHODS, cam, probabilities, targets_of, views
from gimefive_tf.errors import GiMeFiveError
from gimefive_tf.explain.base import CamExplainer, Explainer, target_ids


class VisCam(CamExplainer):
    """A class-activation method computed by tf-keras-vis on the chosen feature map, from one
    forward pass per batch: tf-keras-vis hands the model's outputs to the score function, which
    picks each face's target there, so the probabilities come from the same pass as the map.

    With `mirror` (the face pipeline), each face and its mirror image go through together; the
    decision is their mean probability and the map explains it on the face as given (the mirror
    half gets a zero score, hence a zero map, and is dropped).
    """

    visualization = None  # "module.Class" in tf_keras_vis
    options = {}
    realtime = False  # True (the face pipeline): the traced graph of decision.cam where it can

    def __init__(self, model, layer=None, batch_size=64):
        import importlib

        super().__init__(model, layer, batch_size)
        module, name = self.visualization.rsplit(".", 1)
        self.visualizer = getattr(importlib.import_module(f"tf_keras_vis.{module}"), name)(
            self.model, clone=False)

    def explain_batch(self, images, target):
        import tensorflow as tf

        if self.realtime and self.name in IN_GRAPH_METHODS:  # the traced graph of CamExplainer
            return super().explain_batch(images, target)
        count = len(images)
        given = tf.constant(target_ids(target, count))
        seen = {}

        def score(logits):  # the decision (`gimefive_tf.decision`) and its target's logit
            decided = probabilities(logits, count, self.mirror)
            targets = targets_of(decided, given)
            seen.update(decided=decided, targets=targets)
            chosen = tf.gather(logits[:count], targets, axis=1, batch_dims=1)
            # the logit's gradient with the value zero: Grad-CAM++ scales by exp(score), which
            # overflows float32 for logits above ~88 (the exponential cancels out otherwise)
            chosen = chosen - tf.stop_gradient(chosen)
            return tf.concat([chosen, tf.zeros_like(chosen)], 0) if self.mirror else chosen

        with warnings.catch_warnings():  # tf-keras-vis passes inputs as a list; Keras notes it
            warnings.filterwarnings("ignore", message="The structure of `inputs`")
            maps = self.visualizer(score, np.asarray(views(images, self.mirror)),
                                   penultimate_layer=self.layer,
                                   seek_penultimate_conv_layer=False, expand_cam=False,
                                   normalize_cam=False, **self.options)
        return (np.asarray(maps)[:count], np.asarray(seen["targets"], np.int64),
                np.asarray(seen["decided"]))

    def _combine(self, activations, gradients, images, targets):
        """The realtime path's maps: tf-keras-vis's formula as graph ops (tests hold them equal)."""
        return cam(self.name, activations, gradients).numpy()


class GradCam(VisCam):
    """Grad-CAM (Selvaraju et al., 2017): channel weight = spatial mean of the gradient."""

    name = "gradcam"
    visualization = "gradcam.Gradcam"


DEFAULT_METHOD = "layercam"  # explain, video --explain, the server and the export, unless told

# Default layers, from `benchmarks/explain_faithfulness.py` on 200 validation faces (model
# card): Grad-CAM is most faithful on the last stage (4x4), as the paper used it; Grad-CAM++,
# LayerCAM and Score-CAM on the stage before it (8x8), where LayerCAM beats random maps by the
# widest margin of the gradient methods.

class GradCamPlusPlus(VisCam):
    """Grad-CAM++ (Chattopadhay et al., 2018): positive gradients weighted by alpha."""

    name = "gradcam++"
    visualization = "gradcam_plus_plus.GradcamPlusPlus"
    default_stage = -2


class LayerCam(VisCam):
    """LayerCAM (Jiang et al., 2021): every position weighted by its own positive gradient, so
    it stays faithful on earlier, finer maps; the default explanation, on the 8x8 stage."""

    name = "layercam"
    visualization = "layercam.Layercam"
    default_stage = -2


class ScoreCam(CamExplainer):
    """Score-CAM (Wang et al., 2020) by tf-keras-vis: a channel's weight is the target's softmax
    score when the image is masked by that channel's upsampled, normalized map; no gradients.

    The target comes from one forward pass first (tf-keras-vis's score function also sees every
    masked image's outputs, so it cannot pick the target there); then one image at a time, as the
    masked copies of a batch (1024 per face) would not fit in memory.
    max_channels: only the most varied channels (Faster Score-CAM); None uses all.
    """

    name = "scorecam"
    needs_gradients = False
    max_channels = None
    default_stage = -2

    def __init__(self, model, layer=None, batch_size=64):
        from tf_keras_vis.scorecam import Scorecam

        super().__init__(model, layer, batch_size)
        self.visualizer = Scorecam(self.model, clone=False)
        # its masked images go through model.predict: silence that progress bar (private clone)
        self.model.predict = functools.partial(self.model.predict, verbose=0)

    def explain_batch(self, images, target):
        from tf_keras_vis.utils.scores import CategoricalScore

        _, _, decided, targets = self.activations_and_gradients(
            images, target_ids(target, len(images)))
        targets = targets.numpy()
        channels = self.feature_model.outputs[0].shape[-1]
        channels = min(self.max_channels or channels, channels)
        maps = []
        for image, chosen in zip(images, targets):
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="The structure of `inputs`")
                maps.append(self.visualizer(
                    CategoricalScore([int(chosen)]), image[None], penultimate_layer=self.layer,
                    seek_penultimate_conv_layer=False, max_N=channels,
                    batch_size=self.batch_size, expand_cam=False, normalize_cam=False)[0])
        return np.stack(maps), targets, decided.numpy()


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


def make_explainer(model, method=DEFAULT_METHOD, layer=None, batch_size=64, mirror=False):
    """An Explainer for `method` (one of METHODS) bound to a private clone of `model`.
    mirror: explain the face pipeline's mirror-averaged decision (`gimefive_tf.decision`; CAM
    methods only: the pixel methods explain one view)."""
    check_choice("method", method, METHODS)
    cam_method = issubclass(METHODS[method], CamExplainer)
    if layer is not None and not cam_method:
        raise GiMeFiveError(f"{method} works on input pixels; it takes no layer")
    if mirror and not cam_method:
        raise GiMeFiveError(f"{method} explains one view of a face; it cannot take mirror=True")
    explainer = METHODS[method](model, layer=layer, batch_size=batch_size)
    if mirror:
        explainer.mirror = True
    return explainer


def heatmaps(model, images, method=DEFAULT_METHOD, target=None, layer=None, batch_size=64,
             mirror=False):
    """(N, H, W) float heatmaps in [0, 1] at input resolution (a single image gives (H, W)).

    target: None (each image's predicted class), one emotion (name or index) for all, or one per
    image. layer: the feature map for CAM methods (default: the method's own stage: stage4_conv
    for layercam, stage5_conv for gradcam). mirror: of the face pipeline's decision.
    """
    maps, _ = make_explainer(model, method, layer, batch_size, mirror)(images, target)
    return maps


def _inbound_layer(model, layer):
    """The layer whose output feeds `layer` in a functional model (single input)."""
    inputs = layer.input
    tensor = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        raise GiMeFiveError(f"cannot trace the input of layer {layer.name}")
    return history[0]
