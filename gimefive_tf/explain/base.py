"""The explanation interface: every method turns (model, images, targets) into heatmaps in [0, 1].

`Explainer` owns what all methods share: a private clone of the model (the caller's model is
never touched), target selection (the predicted class by default), batching, resizing to the
input resolution and per-image normalization. Class-activation methods subclass `CamExplainer`
(the feature map, mirror views, a traced forward-and-backward pass); the Grad-CAM family
computes its maps with tf-keras-vis (explain/methods.py), CAM through `channel_weights`.
"""

import numpy as np

from gimefive_tf.decision import explained_decision, finish_maps
from gimefive_tf.errors import GiMeFiveError
from gimefive_tf.labels import EMOTIONS, label_id


def default_layer(model, stage=-1):
    """The layer whose output a CAM method explains: a conv stage counted from the end (-1, the
    last: stage5_conv for GiMeFive, 4x4; -2: stage4_conv, 8x8). A model with fewer stages gets
    its first."""
    from gimefive_tf.models import feature_layer_names

    names = feature_layer_names(model) or \
        [layer.name for layer in model.layers[1:] if len(layer.output.shape) == 4]
    if not names:
        raise GiMeFiveError(f"model {model.name} has no convolutional feature map to explain")
    return names[max(stage, -len(names))]


def feature_maps(model, images, layers=None):
    """{layer name: its activations (N, h, w, C)} of the conv stages (default: all, input to
    output), from one forward pass: what the paper's conv1-conv5 figures show."""
    import keras

    from gimefive_tf.models import feature_layer_names

    layers = list(layers or feature_layer_names(model))
    maps_of = {layer.name for layer in model.layers[1:] if len(layer.output.shape) == 4}
    missing = [name for name in layers if name not in maps_of]
    if missing:
        raise GiMeFiveError(f"no feature map {', '.join(missing)}; conv stages: "
                            f"{', '.join(feature_layer_names(model))}")
    probe = keras.Model(model.inputs, [model.get_layer(name).output for name in layers])
    outputs = probe.predict(np.asarray(images, np.float32), verbose=0)
    return dict(zip(layers, outputs if isinstance(outputs, list) else [outputs]))


def clone_model(model):
    """An independent copy with the same weights, so explaining never mutates the caller's model."""
    import keras

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def resolve_targets(target, logits):
    """Class index per image: the prediction (None), one emotion for all, or one per image."""
    count = len(logits)
    if target is None:
        return np.asarray(logits).argmax(-1).astype(np.int64)
    if isinstance(target, (list, tuple, np.ndarray)):
        if len(target) != count:
            raise GiMeFiveError(f"got {len(target)} targets for {count} images")
        return np.array([_one_target(t) for t in target], np.int64)
    return np.full(count, _one_target(target), np.int64)


def target_ids(target, count):
    """resolve_targets before the logits exist: -1 (the prediction, picked in the graph) when
    `target` is None."""
    if target is None:
        return np.full(count, -1, np.int64)
    return resolve_targets(target, np.zeros((count, 0)))


def _one_target(target):
    index = label_id(target)
    if index is None:
        raise GiMeFiveError(f"target {target!r} is not one of {', '.join(EMOTIONS)}")
    return index


class Explainer:
    """Base class: subclasses implement `raw_maps(images, targets)` -> (N, h, w) float maps."""

    name = None

    def __init__(self, model, layer=None, batch_size=64):
        self.model = clone_model(model)
        self.layer = layer
        self.batch_size = int(batch_size)
        self.size = tuple(model.input_shape[1:3])

    def __call__(self, images, target=None):
        """Heatmaps (N, H, W) in [0, 1] at input resolution, and the target class of each image."""
        maps, targets, _ = self.explain(images, target)
        return maps, targets

    def explain(self, images, target=None):
        """(heatmaps, target class per image, probabilities): the face pipeline's one call.

        CAM methods take the probabilities and the heatmap from one forward pass per batch.
        """
        images = np.asarray(images, np.float32)
        single = images.ndim == 3
        if single:
            images = images[None]
        if images.ndim != 4 or images.shape[1:3] != self.size:
            raise GiMeFiveError(f"expected images of shape (N, {self.size[0]}, {self.size[1]}, 3), "
                                f"got {images.shape}")
        maps, targets, probabilities = [], [], []
        for start in range(0, len(images), self.batch_size):
            batch = images[start:start + self.batch_size]
            raw, batch_targets, batch_probabilities = self.explain_batch(
                batch, target[start:start + self.batch_size]
                if isinstance(target, (list, tuple, np.ndarray)) else target)
            maps.append(finish_maps(raw, self.size).numpy())
            targets.append(np.asarray(batch_targets, np.int64))
            probabilities.append(np.asarray(batch_probabilities, np.float32))
        if not maps:
            return (np.zeros((0, *self.size), np.float32), np.zeros(0, np.int64),
                    np.zeros((0, self.model.output_shape[-1]), np.float32))
        maps, targets = np.concatenate(maps), np.concatenate(targets)
        probabilities = np.concatenate(probabilities)
        if single:
            return maps[0], targets[0], probabilities[0]
        return maps, targets, probabilities

    def explain_batch(self, images, target):
        """(raw maps, targets, probabilities) for one batch; methods that need the logits
        before the maps (perturbation, input gradients) run the model twice."""
        from gimefive_tf.decision import decide

        probabilities = np.asarray(decide(self.model, images))
        targets = resolve_targets(target, probabilities)
        return self.raw_maps(images, targets), targets, probabilities

    def raw_maps(self, images, targets):
        raise NotImplementedError


class CamExplainer(Explainer):
    """Class activation mapping on a conv feature map A: relu(sum_c w_c * A_c).

    Subclasses override `channel_weights(activations, gradients, images, targets)`, returning
    weights broadcastable to the activations (N, h, w, C): per channel (N, 1, 1, C) or per
    position (LayerCAM).
    """

    needs_gradients = True
    default_stage = -1  # the conv stage explained when no layer is named (see default_layer)

    def __init__(self, model, layer=None, batch_size=64):
        import keras

        super().__init__(model, layer, batch_size)
        self.layer = layer or default_layer(self.model, self.default_stage)
        try:
            feature = self.model.get_layer(self.layer).output
        except ValueError:
            raise GiMeFiveError(f"model has no layer {self.layer!r}; conv stages: "
                                f"{', '.join(_four_d_layers(self.model))}") from None
        if len(feature.shape) != 4:
            raise GiMeFiveError(f"layer {self.layer!r} has no spatial feature map "
                                f"(output shape {feature.shape})")
        self.feature_model = keras.Model(self.model.inputs, [feature, self.model.outputs[0]])
        self.mirror = False  # True: the face pipeline's mirror-averaged decision (`decision`)

    def activations_and_gradients(self, images, targets):
        """Feature maps, d(target logit)/d(feature map), probabilities and targets for the whole
        batch in one traced graph (`decision.explained_decision`); a target of -1 means the
        decision's top class."""
        import tensorflow as tf

        if not hasattr(self, "_traced"):
            self._traced = tf.function(self._activations_and_gradients, reduce_retracing=True)
        return self._traced(tf.convert_to_tensor(images, tf.float32),
                            tf.convert_to_tensor(targets, tf.int64))

    def _activations_and_gradients(self, images, targets):
        return explained_decision(self.feature_model, images, targets, self.mirror,
                                  self.needs_gradients)

    def explain_batch(self, images, target):
        targets = target_ids(target, len(images))
        activations, gradients, probabilities, targets = self.activations_and_gradients(
            images, targets)
        return self._combine(activations, gradients, images, targets.numpy()), \
            targets.numpy(), probabilities.numpy()

    def _combine(self, activations, gradients, images, targets):
        import tensorflow as tf

        weights = self.channel_weights(activations, gradients, images, targets)
        return tf.nn.relu(tf.reduce_sum(weights * activations, axis=-1)).numpy()

    def channel_weights(self, activations, gradients, images, targets):
        raise NotImplementedError


def _four_d_layers(model):
    return [layer.name for layer in model.layers[1:] if len(layer.output.shape) == 4]
