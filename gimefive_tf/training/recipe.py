"""The paper's recipe as Keras pieces: optimizer, loss and metric, one-hot batches, the data
tables of a run. Shared by training and the KerasTuner search."""

from gimefive_tf.errors import GiMeFiveError

def make_optimizer(config, steps_per_epoch):
    import keras

    learning_rate = config.learning_rate
    if config.schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(
            config.learning_rate, decay_steps=config.epochs * steps_per_epoch)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=config.momentum,
                                    weight_decay=config.weight_decay or None)
    if config.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate, weight_decay=config.weight_decay or None)
    return keras.optimizers.AdamW(learning_rate, weight_decay=config.weight_decay)


def compile_for_training(model, config, steps_per_epoch):
    """Compile with the run's optimizer and a cross-entropy on one-hot labels (smoothing-ready)."""
    import keras

    model.compile(
        optimizer=make_optimizer(config, steps_per_epoch),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True,
                                                  label_smoothing=config.label_smoothing),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )
    return model


def one_hot_batches(dataset, num_classes, mixer=None):
    import tensorflow as tf

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
