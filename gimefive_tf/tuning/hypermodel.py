"""KerasTuner over the paper's search space: a HyperModel whose `build` reads the space (data,
not code) and calls the model builder, and whose `fit` applies the training recipe."""

import dataclasses

import keras
import keras_tuner

from gimefive_tf.models.config import GiMeFiveConfig
from gimefive_tf.training import TrainConfig, compile_for_training, one_hot_batches

MODEL_KNOBS = ("conv_depth", "fc_depth", "batch_norm", "pooling", "activation", "dropout")
TRAIN_KNOBS = ("learning_rate", "batch_size", "optimizer", "epochs", "early_stopping",
               "patience")


def _defaults(config_class, names):
    fields = {field.name: field.default for field in dataclasses.fields(config_class)}
    return {name: fields[name] for name in names}


# The paper's values live once, in the configs' defaults; the search falls back to them.
DEFAULTS = {**_defaults(TrainConfig, TRAIN_KNOBS), **_defaults(GiMeFiveConfig, MODEL_KNOBS)}


class GiMeFiveHyperModel(keras_tuner.HyperModel):
    """space: {name: [choices]}; fixed: {name: value} pins; epochs_cap: at most this many
    epochs per trial (quick searches); train/val: LabeledImages tables."""

    def __init__(self, space, train, val, fixed=None, epochs_cap=None, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.space, self.fixed = dict(space), dict(fixed or {})
        self.train, self.val = train, val
        self.epochs_cap, self.seed = epochs_cap, seed

    def values(self, hp):
        """Every hyperparameter's value for this trial: fixed, searched, or the paper default."""
        values = {}
        for name, default in DEFAULTS.items():
            if name in self.fixed:
                values[name] = hp.Fixed(name, self.fixed[name])
            elif name in self.space:
                values[name] = hp.Choice(name, self.space[name], ordered=False)
            else:
                values[name] = default
            if isinstance(default, bool):  # KerasTuner hands booleans back as 0/1
                values[name] = bool(values[name])
        return values

    def build(self, hp):
        from gimefive_tf.models import create_model

        values = self.values(hp)
        model = create_model("gimefive", **{k: values[k] for k in MODEL_KNOBS})
        config = self.recipe(values)
        steps = -(-len(self.train) // config.batch_size)
        return compile_for_training(model, config, steps)

    def recipe(self, values):
        return TrainConfig(data="tuning", optimizer=values["optimizer"],
                           learning_rate=values["learning_rate"], batch_size=values["batch_size"],
                           epochs=values["epochs"], patience=values["patience"],
                           early_stopping=values["early_stopping"], seed=self.seed)

    def fit(self, hp, model, *args, **kwargs):
        from gimefive_tf.data import make_dataset, training_stream

        values = self.values(hp)
        epochs = kwargs.pop("epochs", None) if "tuner/epochs" in hp.values else None
        epochs = epochs or values["epochs"]
        if self.epochs_cap:
            epochs = min(epochs, self.epochs_cap)
        image_size = model.input_shape[1]
        stream, steps = training_stream(self.train, values["batch_size"], image_size,
                                        seed=self.seed)
        val = make_dataset(self.val, 256, image_size)
        callbacks = list(kwargs.pop("callbacks", []))
        if values["early_stopping"]:
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor="val_accuracy", mode="max", patience=values["patience"]))
        history = model.fit(one_hot_batches(stream, model.output_shape[-1]), epochs=epochs,
                            initial_epoch=kwargs.pop("initial_epoch", 0), steps_per_epoch=steps,
                            validation_data=one_hot_batches(val, model.output_shape[-1]),
                            callbacks=callbacks, verbose=kwargs.pop("verbose", 0), shuffle=False)
        self.epochs_run = len(history.history.get("loss", []))  # read by the trial recorder
        return history
