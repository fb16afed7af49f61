"""The face pipeline's decision and its explanation, in one place.

A face cut from a picture is never framed quite like the training faces; deciding on the crop
and its mirror image together (their mean probability, in one forward pass) averages out the
asymmetric part. A class-activation map then explains *that* decision on the crop as given:
the target is the mirror-averaged top class, the map that class's logit on the unmirrored view.

Every path that classifies or explains calls these functions: `Predictor`, the CAM explainers
(traced and tf-keras-vis), the export's SavedModel signatures (which the server and `batch` run)
and the `cam` TFLite model, so no runtime can report one emotion and explain another.
The view and averaging steps are `keras.ops` (they run on JAX too); the maps are TensorFlow.
"""


def views(pixels, mirror):
    """The batch the model sees: `pixels` (N, H, W, C), followed by their mirror images."""
    import keras

    if not mirror:
        return pixels
    return keras.ops.concatenate([pixels, keras.ops.flip(pixels, axis=2)], axis=0)


def probabilities(logits, count, mirror):
    """The decision's probabilities (N, classes) from the logits of `views` of N images: the
    softmax, or with `mirror` the mean of each image's and its mirror image's softmax."""
    import keras

    probs = keras.ops.softmax(logits, axis=-1)
    if not mirror:
        return probs
    return (probs[:count] + probs[count:]) / 2


def decide(model, pixels, mirror=False):
    """Probabilities (N, classes) of `model` on float pixels, mirror-averaged or not."""
    import keras

    count = keras.ops.shape(pixels)[0]
    return probabilities(model(views(pixels, mirror), training=False), count, mirror)


def targets_of(decided, targets):
    """Each image's explained class: `targets` where given (>= 0), else the decision's top
    class (-1: the prediction)."""
    import tensorflow as tf

    return tf.where(targets < 0, tf.argmax(decided, axis=-1), tf.cast(targets, tf.int64))


def explained_decision(feature_model, pixels, targets, mirror=False, gradients=True):
    """(activations, d target logit / d activations, probabilities, targets) of the crops as
    given, from one forward and backward pass over `views(pixels, mirror)`: `feature_model`
    maps pixels to (the explained feature map, logits); a target of -1 is the decision's top
    class. Traced by the explainers and the SavedModel's explain signatures alike."""
    import tensorflow as tf

    count = tf.shape(pixels)[0]
    with tf.GradientTape() as tape:
        activations, logits = feature_model(views(pixels, mirror), training=False)
        decided = probabilities(logits, count, mirror)
        targets = targets_of(decided, targets)
        score = tf.reduce_sum(tf.gather(logits[:count], targets, axis=1, batch_dims=1))
    grads = tape.gradient(score, activations)[:count] if gradients else \
        tf.zeros_like(activations[:count])
    return activations[:count], grads, decided, targets


def finish_maps(maps, size):
    """Raw maps (N, h, w) as heatmaps (N, *size) in [0, 1], as every method and runtime shows
    them: bilinear resize to the input, per-map min-max scaling (a constant map becomes zeros).
    A CAM's ReLU comes before it (`cam`)."""
    import tensorflow as tf

    maps = tf.convert_to_tensor(maps, tf.float32)
    maps = tf.where(tf.math.is_finite(maps), maps, tf.zeros_like(maps))
    if tuple(maps.shape[1:3]) != tuple(size):
        maps = tf.image.resize(maps[..., None], size, method="bilinear")[..., 0]
    low = tf.reduce_min(maps, axis=(1, 2), keepdims=True)
    span = tf.reduce_max(maps, axis=(1, 2), keepdims=True) - low
    return tf.math.divide_no_nan(maps - low, span)


IN_GRAPH_METHODS = ("gradcam", "layercam")  # the CAM methods written here as graph ops


def cam(method, activations, gradients):
    """Grad-CAM (channels weighted by their mean gradient) or LayerCAM (every position by its
    own positive gradient), ReLU'd, as TensorFlow ops: the formulas tf-keras-vis uses, for
    where it cannot serve: inside a SavedModel or TFLite graph, and per video frame (tf-keras-vis
    runs eagerly and rebuilds its model each call: 3.8x slower at one face)."""
    import tensorflow as tf

    from gimefive_tf.errors import GiMeFiveError

    if method == "gradcam":
        weighted = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True) * activations
    elif method == "layercam":
        weighted = tf.nn.relu(gradients) * activations
    else:
        raise GiMeFiveError(f"{method} is computed by tf-keras-vis only; in a graph: "
                            f"{', '.join(IN_GRAPH_METHODS)}")
    return tf.nn.relu(tf.reduce_sum(weighted, axis=-1))
