"""Size and cost of a model: trainable parameters, weight megabytes and forward FLOPs."""

import math


def count_params(weights):
    return int(sum(math.prod(w.shape) for w in weights))


def forward_gflops(model):
    """Forward FLOPs (multiplies and adds counted separately) for one image, in billions.

    Counted by TensorFlow's graph profiler on the traced inference graph, so every op the model
    really runs is included; returns None under a backend other than TensorFlow.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    shape = [1, *model.input_shape[1:]]
    graph = tf.function(lambda x: model(x, training=False)).get_concrete_function(
        tf.TensorSpec(shape, tf.float32)).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")  # the v1 profiler warns about its own deprecation on every call
    try:
        info = tf.compat.v1.profiler.profile(graph=graph, run_meta=tf.compat.v1.RunMetadata(),
                                             cmd="op", options=options)
    finally:
        logger.setLevel(level)
    return info.total_float_ops / 1e9


def describe(model, preset=None):
    """One zoo row: name, paper depth, trainable/total params, float32 MB, GFLOPs per image."""
    total = count_params(model.weights)
    return {
        "name": preset.name if preset else model.name,
        "layers": preset.paper_layers if preset else None,
        "params": count_params(model.trainable_weights),
        "total_params": total,
        "size_mb": round(total * 4 / 1e6, 2),
        "gflops": None if (g := forward_gflops(model)) is None else round(g, 3),
        "paper_row": preset.paper_row if preset else None,
        "description": preset.description if preset else None,
    }
