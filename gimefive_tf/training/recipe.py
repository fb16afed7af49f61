"""The paper's recipe as Keras pieces: optimizer, loss and metric, one-hot batches, the data
tables of a run, the tf.distribute strategy it runs under. Shared by training and the KerasTuner
search."""

import json
import os

from gimefive_tf.errors import GiMeFiveError

TF_CONFIG_EXAMPLE = ('e.g. TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                     '"task": {"type": "worker", "index": 0}}\' (index 1 on host2)')


def distribution_strategy(name):
    """The tf.distribute strategy of `--distribution`: the default one (no distribution) for
    "none", MirroredStrategy over this machine's GPUs, or MultiWorkerMirroredStrategy over the
    TF_CONFIG cluster. Made before any TensorFlow op runs (the multi-worker one configures the
    collectives at start-up); it waits until every worker of the cluster is up."""
    import tensorflow as tf

    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    check_tf_config()

    class MultiWorkerStrategy(tf.distribute.MultiWorkerMirroredStrategy):
        """MultiWorkerMirroredStrategy as Keras 3's fit() calls it (keras-team/keras#20585):
        fit reduces an input batch, only to read its shapes, and the scalar step logs along
        axis 0, both of which the strategy refuses. The batch is this worker's own; a scalar
        is averaged over all replicas (the epoch logs come from the metrics, summed over all)."""

        def reduce(self, reduce_op, value, axis=None):
            # only Keras's own call: reduce("MEAN", the input batch's structure, axis=None)
            if isinstance(value, (tuple, list, dict)) and axis is None and \
                    str(reduce_op).upper().endswith("MEAN"):
                return tf.nest.map_structure(lambda v: self.experimental_local_results(v)[0],
                                             value)
            if axis == 0 and self.experimental_local_results(value)[0].shape.rank == 0:
                axis = None
            return super().reduce(reduce_op, value, axis)

    return MultiWorkerStrategy()


def check_tf_config():
    """Check TF_CONFIG (the cluster and this process's task in it) before TensorFlow reads it:
    a mistake is one line, not a traceback or a wait for a cluster that cannot form."""
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        raise GiMeFiveError("--distribution multi-worker reads the cluster from the TF_CONFIG "
                            f"environment variable, which is not set; set it on every worker, "
                            f"{TF_CONFIG_EXAMPLE}")
    try:
        spec = json.loads(text)
    except ValueError as error:
        raise GiMeFiveError(f"TF_CONFIG is not valid JSON ({error}); {TF_CONFIG_EXAMPLE}") \
            from None
    cluster = spec.get("cluster") if isinstance(spec, dict) else None
    task = spec.get("task") if isinstance(spec, dict) else None
    if not isinstance(cluster, dict) or not cluster or set(cluster) - {"chief", "worker"} or \
            not all(isinstance(hosts, list) and hosts for hosts in cluster.values()) or \
            len(cluster.get("chief", [])) > 1:
        raise GiMeFiveError('TF_CONFIG needs "cluster": {"worker": [host:port, ...]} (and at '
                            f'most one "chief"); {TF_CONFIG_EXAMPLE}')
    kind, index = (task.get("type"), task.get("index")) if isinstance(task, dict) else (None, None)
    if not isinstance(kind, str) or kind not in cluster or isinstance(index, bool) \
            or not isinstance(index, int) or not 0 <= index < len(cluster[kind]):
        raise GiMeFiveError('TF_CONFIG needs "task": {"type": "worker", "index": I}, this '
                            f"process's place in the cluster (a job of {sorted(cluster)}, I "
                            f"counted from 0); got {task!r}")


def make_optimizer(config, steps_per_epoch):
    import keras

    learning_rate = config.learning_rate
    if config.schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(
            config.learning_rate, decay_steps=config.epochs * steps_per_epoch)
    average = {"use_ema": bool(config.ema), "ema_momentum": config.ema or 0.99}
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=config.momentum,
                                    weight_decay=config.weight_decay or None, **average)
    if config.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate, weight_decay=config.weight_decay or None,
                                     **average)
    return keras.optimizers.AdamW(learning_rate, weight_decay=config.weight_decay, **average)


def compile_for_training(model, config, steps_per_epoch, jit_compile="auto"):
    """Compile with the run's optimizer and a cross-entropy on one-hot labels (smoothing-ready),
    Keras' own. jit_compile: Keras' (the accelerator compiles the whole step on JAX)."""
    import keras

    model.compile(
        optimizer=make_optimizer(config, steps_per_epoch),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True,
                                                  label_smoothing=config.label_smoothing),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        jit_compile=jit_compile,
    )
    return model


def inference_part(model):
    """The plain model inside a training model with augmentation in front (a run's
    last.keras), or the model itself."""
    return model.layers[-1] if model.name.endswith("_training") else model


def one_hot_batches(dataset, num_classes, mixer=None):
    """(images, one-hot targets) batches from (images, int labels) ones; target vectors
    (distillation's soft labels) pass as they are."""
    import tensorflow as tf

    if dataset.element_spec[1].dtype.is_integer:
        dataset = dataset.map(lambda x, y: (x, tf.one_hot(y, num_classes)),
                              num_parallel_calls=tf.data.AUTOTUNE)
    if mixer is not None:
        dataset = dataset.map(mixer, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset


def load_tables(config):
    """(train, validation, test or None) tables, the validation split stratified and seeded."""
    from gimefive_tf.data import read_dataset, stratified_split

    train = read_dataset(config.data, layout=config.layout, split=config.split)
    if len(train.splits()) > 1:
        raise GiMeFiveError(f"{config.data} holds several splits ({', '.join(train.splits())}); "
                            "choose the training one with --split")
    if config.val_data:
        validation = read_dataset(config.val_data, layout=config.layout)
    else:
        train, validation = stratified_split(train, config.val_split, seed=config.seed)
    train = train.sample(config.limit, seed=config.seed)
    test = read_dataset(config.test_data, layout=config.layout) if config.test_data else None
    return train, validation, test
