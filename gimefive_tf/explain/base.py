"""The explanation interface: every method turns (model, images, targets) into heatmaps in [0, 1].

`Explainer` owns what all methods share: a private clone of the model (the caller's model is
never touched), target selection (the predicted class by default), batching, resizing to the
input resolution and per-image normalization. Class-activation methods subclass `CamExplainer`
(the feature map, mirror views, a traced forward-and-backward pass); the Grad-CAM family
computes its maps with tf-keras-vis (explain/methods.py), CAM through `channel_weights`.
"""

import numpy as np

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


def normalize_maps(maps):
    """Per-image min-max scaling to [0, 1]; a constant map becomes all zeros."""
    maps = np.nan_to_num(np.asarray(maps, np.float32))
    low = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - low
    return np.where(span > 0, (maps - low) / np.where(span > 0, span, 1), 0).astype(np.float32)


IN_GRAPH_METHODS = ("gradcam", "layercam")  # computed in a traced graph (combine_cam)


def combine_cam(method, features, gradients):
    """Grad-CAM (channels weighted by their mean gradient) or LayerCAM (every position by its
    own positive gradient) as TensorFlow ops, before the final ReLU: the formulas tf-keras-vis
    uses, for where it cannot serve: inside a SavedModel or TFLite graph, and per video frame
    (tf-keras-vis runs eagerly and rebuilds its model each call: 3.8x slower at one face)."""
    import tensorflow as tf

    if method == "gradcam":
        return tf.reduce_sum(tf.reduce_mean(gradients, axis=(1, 2), keepdims=True) * features,
                             axis=-1)
    if method == "layercam":
        return tf.reduce_sum(tf.nn.relu(gradients) * features, axis=-1)
    raise GiMeFiveError(f"{method} is computed by tf-keras-vis only; in a graph: "
                        f"{', '.join(IN_GRAPH_METHODS)}")


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
        import tensorflow as tf

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
            raw, batch_targets, logits = self.explain_batch(
                batch, target[start:start + self.batch_size]
                if isinstance(target, (list, tuple, np.ndarray)) else target)
            raw = np.asarray(raw, np.float32)
            if raw.shape[1:] != self.size:
                raw = tf.image.resize(raw[..., None], self.size, method="bilinear").numpy()[..., 0]
            maps.append(normalize_maps(raw))
            targets.append(batch_targets)
            probabilities.append(np.asarray(tf.nn.softmax(logits, axis=-1)))
        if not maps:
            return (np.zeros((0, *self.size), np.float32), np.zeros(0, np.int64),
                    np.zeros((0, self.model.output_shape[-1]), np.float32))
        maps, targets = np.concatenate(maps), np.concatenate(targets)
        probabilities = np.concatenate(probabilities)
        if single:
            return maps[0], targets[0], probabilities[0]
        return maps, targets, probabilities

    def explain_batch(self, images, target):
        """(raw maps, targets, logits) for one batch; methods that need the logits before the
        maps (perturbation, input gradients) run the model twice."""
        logits = np.asarray(self.model(images, training=False))
        targets = resolve_targets(target, logits)
        return self.raw_maps(images, targets), targets, logits

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
        self.mirror = False  # True: decide on each face and its mirror image (the face pipeline)

    def activations_and_gradients(self, images, targets):
        """Feature maps, d(target logit)/d(feature map), logits and targets for the whole batch
        in one graph; a target of -1 means the predicted class."""
        import tensorflow as tf

        if not hasattr(self, "_traced"):
            self._traced = tf.function(self._activations_and_gradients, reduce_retracing=True)
        return self._traced(tf.convert_to_tensor(images, tf.float32),
                            tf.convert_to_tensor(targets, tf.int64))

    def _activations_and_gradients(self, images, targets):
        import tensorflow as tf

        count = tf.shape(images)[0]
        if self.mirror:  # each face and its mirror image in the same forward pass
            images = tf.concat([images, tf.reverse(images, axis=[2])], axis=0)
        with tf.GradientTape() as tape:
            activations, logits = self.feature_model(images, training=False)
            if self.mirror:
                # the decision is the two views' mean probability, and the map explains it
                # on the face as given: the log of that mean stands in for the logits
                probabilities = (tf.nn.softmax(logits[:count]) + tf.nn.softmax(logits[count:])) / 2
                decision = tf.math.log(probabilities)
            else:
                decision = logits
            targets = tf.where(targets < 0, tf.argmax(decision, axis=-1), targets)
            score = tf.reduce_sum(tf.gather(logits[:count], targets, axis=1, batch_dims=1))
        if not self.needs_gradients:
            return activations[:count], tf.zeros_like(activations[:count]), decision, targets
        return activations[:count], tape.gradient(score, activations)[:count], decision, targets

    def explain_batch(self, images, target):
        targets = target_ids(target, len(images))
        activations, gradients, logits, targets = self.activations_and_gradients(images, targets)
        return self._combine(activations, gradients, images, targets.numpy()), \
            targets.numpy(), logits.numpy()

    def _combine(self, activations, gradients, images, targets):
        import tensorflow as tf

        weights = self.channel_weights(activations, gradients, images, targets)
        return tf.nn.relu(tf.reduce_sum(weights * activations, axis=-1)).numpy()

    def channel_weights(self, activations, gradients, images, targets):
        raise NotImplementedError


def _four_d_layers(model):
    return [layer.name for layer in model.layers[1:] if len(layer.output.shape) == 4]
