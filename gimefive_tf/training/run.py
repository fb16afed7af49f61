"""One training run in its directory: resumable, locked while it runs, recorded per epoch
(history.csv, curves.png, best.keras, last.keras, TensorBoard), stopped on a non-finite loss."""

import contextlib
import math
import os
import pathlib
import sys
import tempfile
import time

import yaml

from gimefive_tf.errors import GiMeFiveError
from gimefive_tf.outputs import atomic_path, write_text
from gimefive_tf.training.recipe import (
    compile_for_training, distribution_strategy, inference_part, load_tables, one_hot_batches)
from gimefive_tf.training.teachers import (
    check_teachers, run_targets, saved_teacher_probabilities)

RESUMABLE_CHANGES = ("epochs", "distribution")  # how long and how spread, not what is trained
HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "test_loss",
                   "test_accuracy", "learning_rate", "epoch_seconds", "images_per_second")


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunDirectory:
    """The files of one run; refuses to mix two configs in one directory."""

    def __init__(self, path):
        self.path = pathlib.Path(path)

    def __truediv__(self, name):
        return self.path / name

    def check_target(self):
        """Refuse a file where the run's folder should be (before any data is read)."""
        if self.path.exists() and not self.path.is_dir():
            raise GiMeFiveError(f"--out {self.path} is a file; pass a folder for the run")

    def resumable(self, config):
        """True when the directory holds a run of `config` to resume; a run of another config
        is refused (its epochs and distribution may change). Reads only."""
        config_file = self / "config.yaml"
        if not config_file.exists():
            return False
        saved = {**config.defaults(), **(yaml.safe_load(config_file.read_text()) or {})}
        current = config.to_dict()
        changed = [key for key in sorted(set(saved) | set(current))
                   if key not in RESUMABLE_CHANGES and saved.get(key) != current.get(key)]
        if changed:
            detail = "; ".join(f"{k}: {saved.get(k)!r} -> {current.get(k)!r}"
                               for k in changed[:4])
            raise GiMeFiveError(f"{self.path} holds a run with a different config ({detail}); "
                                "rerun with the same options to resume, or pass another --out")
        return (self / "last.keras").exists()

    def prepare(self, config):
        """Create the directory for `config`, or check it matches a run already there (and
        record the new epochs and distribution). Returns True when there is a run to resume.
        """
        config_file = self / "config.yaml"
        text = yaml.safe_dump(config.to_dict(), sort_keys=False)
        if config_file.exists():
            resuming = self.resumable(config)
            if config_file.read_text() != text:
                write_text(config_file, text)
            return resuming
        self.check_target()
        if self.path.exists() and any(self.path.iterdir()):
            raise GiMeFiveError(f"{self.path} exists and is not a gimefive_tf run directory; "
                                "pass an empty or new --out")
        from gimefive_tf.outputs import writable_folder

        writable_folder(self.path)
        write_text(config_file, text)
        return False

    @contextlib.contextmanager
    def locked(self):
        """Hold the run for this process: a second process training into the same directory
        gets one line naming the first's pid (a lock left by a killed process is taken over)."""
        lock = self / ".lock"
        try:
            descriptor = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                owner = int(lock.read_text().strip() or 0)
            except (OSError, ValueError):
                owner = 0
            if owner and owner != os.getpid() and _process_alive(owner):
                raise GiMeFiveError(f"{self.path} is in use: process {owner} is training in it; "
                                    "wait for it or pass another --out") from None
            lock.unlink(missing_ok=True)
            descriptor = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(str(os.getpid()))
        try:
            yield self
        finally:
            lock.unlink(missing_ok=True)

    def read_history(self):
        import pandas as pd

        path = self / "history.csv"
        return pd.read_csv(path).to_dict("records") if path.exists() else []

    def write_history(self, rows):
        import pandas as pd

        frame = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
        write_text(self / "history.csv", frame.to_csv(index=False))


def save_model_atomically(model, path, include_optimizer=True):
    """Write `path` via a temporary file, so a crash never leaves a half-written model.

    Keras 3 ignores include_optimizer for .keras files (and clone_model copies the compile
    state); an inference copy is saved as a new, uncompiled functional model over the same
    layers, which halves the file (no SGD momentum).
    """
    import keras

    if not include_optimizer and getattr(model, "optimizer", None) is not None:
        model = keras.Model(model.inputs, model.outputs, name=model.name)
    with atomic_path(path) as temporary:
        model.save(temporary)


# ------------------------------------------------------------------------------ callback

def _make_recorder(run, config, inference_model, steps_per_epoch, history, test_dataset):
    import keras

    class RunRecorder(keras.callbacks.Callback):
        """Per epoch: test metrics, history.csv, curves.png, best.keras, last.keras, stopping."""

        def __init__(self):
            super().__init__()
            self.history = history
            self.best = max((row["val_accuracy"] for row in history), default=-math.inf)
            best_epoch = max(history, key=lambda r: r["val_accuracy"])["epoch"] if history else 0
            self.wait = len(history) - best_epoch if history else 0
            self.diverged, self.epoch = None, 0  # (epoch, step, loss) of a non-finite loss
            self.raw_weights = None  # the trained weights while the averaged ones are scored

        def should_stop(self):
            """Early stopping's verdict on the epochs so far (also after a resume)."""
            return config.early_stopping and bool(self.history) and self.wait >= config.patience

        def on_train_batch_end(self, batch, logs=None):
            loss = float((logs or {}).get("loss", 0.0))
            if not math.isfinite(loss) and self.diverged is None:
                self.diverged = (self.epoch + 1, batch + 1, loss)
                self.model.stop_training = True

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
            reseed_layers(self.model, config.seed, epoch)
            self.epoch_start = time.perf_counter()
            self.train_seconds = None

        def on_test_begin(self, logs=None):
            if self.train_seconds is None:
                self.train_seconds = time.perf_counter() - self.epoch_start
            if self.raw_weights is None:  # validation, test and best.keras: the average
                self.raw_weights = swap_in_average(self.model)

        def on_epoch_end(self, epoch, logs=None):
            if self.diverged:  # nothing of a diverged epoch is kept: no history, no models
                return
            logs = dict(logs or {})
            train_seconds = self.train_seconds or (time.perf_counter() - self.epoch_start)
            if test_dataset is not None:
                logs["test_loss"], logs["test_accuracy"] = evaluate_logits(
                    inference_model, test_dataset, config.label_smoothing)
            improved = logs["val_accuracy"] > self.best
            if improved:
                self.best, self.wait = logs["val_accuracy"], 0
            else:
                self.wait += 1
            if config.schedule == "plateau" and self.wait and self.wait % 5 == 0:
                optimizer = self.model.optimizer
                optimizer.learning_rate.assign(_current_lr(optimizer) * 0.1)
            row = {"epoch": epoch + 1, **{k: logs.get(k) for k in HISTORY_COLUMNS[1:7]},
                   "learning_rate": _current_lr(self.model.optimizer),
                   "epoch_seconds": round(time.perf_counter() - self.epoch_start, 2),
                   "images_per_second": round(steps_per_epoch * config.batch_size
                                              / train_seconds, 1)}
            self.history.append(row)
            run.write_history(self.history)
            plot_curves(self.history, run / "curves.png")
            if improved:
                save_model_atomically(inference_model, run / "best.keras", include_optimizer=False)
            if self.raw_weights is not None:  # training goes on from the trained weights
                for variable, value in zip(self.model.trainable_weights, self.raw_weights):
                    variable.assign(value)
                self.raw_weights = None
            save_model_atomically(self.model, run / "last.keras")
            if self.should_stop():
                self.model.stop_training = True

    return RunRecorder()


def swap_in_average(model):
    """With an optimizer that keeps a moving average of the weights (--ema), put the average in
    the model and return the trained weights, to put back before training goes on; else None.
    Keras itself only swaps at the end of fit, so the average is what a finished run keeps.
    Keras averages the trainable weights only: batch norm's statistics stay the running ones."""
    optimizer = getattr(model, "optimizer", None)
    if not getattr(optimizer, "use_ema", False):
        return None
    raw = [variable.numpy() for variable in model.trainable_weights]
    optimizer.finalize_variable_values(model.trainable_weights)
    return raw


def evaluate_logits(model, dataset, label_smoothing=0.0):
    """(mean cross-entropy, accuracy) of a logits model on (images, int labels) batches, without
    compiling it (so saved inference models carry no optimizer)."""
    import keras
    import numpy as np
    from keras import ops

    # the training loss itself, per image (compile_for_training's)
    loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=label_smoothing,
                                                reduction=None)
    losses, correct, count = [], 0, 0
    for images, labels in dataset:
        logits = model(images, training=False)
        losses.append(ops.convert_to_numpy(loss(ops.one_hot(labels, logits.shape[-1]), logits)))
        correct += int(np.sum(ops.convert_to_numpy(ops.argmax(logits, -1)) == np.asarray(labels)))
        count += len(labels)
    return float(np.concatenate(losses).mean()), correct / count


def reseed_layers(model, seed, epoch):
    """Set every random layer's generator (dropout, augmentation) from (seed, epoch) alone.

    Keras does not save generator states in .keras files, so this is what makes a resumed
    epoch draw the same dropout masks as an uninterrupted run.
    """
    import numpy as np

    states = [v for v in model.non_trainable_variables if v.path.endswith("seed_generator_state")]
    for index, state in enumerate(states):
        value = (seed * 1_000_003 + epoch * 1_009 + index) % (2 ** 31)
        state.assign(np.array([value, 0], dtype=state.dtype))


def _current_lr(optimizer):
    """The learning rate now, as a float (a mirrored variable under a distribution)."""
    from keras import ops

    rate = optimizer.learning_rate
    return float(ops.convert_to_numpy(rate(optimizer.iterations) if callable(rate) else rate))


def plot_curves(history, path=None):
    """Loss and accuracy per epoch for train, validation and (when given) test."""
    from matplotlib.figure import Figure

    from gimefive_tf.outputs import finish_figure

    epochs = [row["epoch"] for row in history]
    figure = Figure(figsize=(10, 4))
    axes = figure.subplots(1, 2)
    for axis, metric in zip(axes, ("loss", "accuracy")):
        for prefix, label in (("", "train"), ("val_", "validation"), ("test_", "test")):
            values = [row.get(prefix + metric) for row in history]
            if any(v is not None and not (isinstance(v, float) and math.isnan(v))
                   for v in values):
                axis.plot(epochs, values, marker=".", label=label)
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    return finish_figure(figure, path, dpi=100)


# ------------------------------------------------------------------------------- training

def train(config, out, verbose=2):
    """Run (or resume) training in `out`; returns a summary dict of the run. A non-finite loss
    stops it with a GiMeFiveError; the directory is locked while it runs.

    Under a multi-worker distribution every worker runs this with the same `out` (a folder
    they all reach): the chief writes the run there; the others read it to resume alike, and
    write their copies to a temporary folder, removed at the end (every worker saves, as
    TensorFlow's multi-worker guide asks: reading distributed variables may be collective).
    """
    from gimefive_tf.loading import model_file

    scored = saved_teacher_probabilities(pathlib.Path(out)) is not None  # a resume
    teachers = [] if scored else config.teachers
    for start in filter(None, [config.init_from, *teachers]):
        model_file(start)  # a wrong path is refused before the run directory exists
    strategy = distribution_strategy(config.distribution)  # before any TensorFlow op
    if not scored:
        check_teachers(config)  # before the run directory exists too
    import tensorflow as tf

    try:
        return _train_as_chief_or_worker(RunDirectory(out), strategy, config, verbose)
    except tf.errors.UnavailableError:  # TensorFlow aborted the collectives: a peer is gone
        if config.distribution != "multi-worker":
            raise
        raise GiMeFiveError("another worker of the cluster stopped or cannot be reached (its "
                            "output says why); rerun the same command on every worker to "
                            "resume after the last finished epoch") from None


def _train_as_chief_or_worker(run, strategy, config, verbose):
    """The chief (or the only process) trains in `run`; another worker resumes from it and
    writes to a temporary folder."""
    run.check_target()
    tables = load_tables(config)
    _check_replica_batches(config, tables, strategy.num_replicas_in_sync)
    if strategy.extended.should_checkpoint:  # the chief, or the only process
        resuming = run.prepare(config)
        with run.locked():
            _write_skipped(run, [table for table in tables if table is not None])
            return _train_in(run, run, resuming, strategy, config, *tables, verbose)
    # Another worker neither takes the chief's lock (it writes nothing in `out`, and the lock's
    # pid means nothing on another host) nor waits for it: the chief cannot finish an epoch,
    # and so write anything, before every worker has joined it.
    resuming = run.resumable(config)
    with tempfile.TemporaryDirectory(prefix="gimefive-worker-") as scratch:
        return _train_in(run, RunDirectory(scratch), resuming, strategy, config, *tables,
                         verbose)


def _check_workers_agree(strategy, source, resuming):
    """Every worker starts from the same finished epoch, or none starts. A worker whose --out
    is not the chief's folder (not one shared folder) would build other variables and wait in
    a collective forever; one all-reduce of (start, start**2, 1) tells them apart first."""
    import tensorflow as tf

    start = float(len(source.read_history())) if resuming else -1.0
    mine = tf.constant([start, start * start, 1.0], tf.float32)

    @tf.function  # eagerly, the strategy warns of its overhead on stderr
    def summed():
        return strategy.reduce(tf.distribute.ReduceOp.SUM,
                               strategy.run(lambda: tf.identity(mine)), axis=None)

    total, squares_total, workers = summed().numpy()
    if abs(squares_total * workers - total * total) > 0.5:
        raise GiMeFiveError(
            "the workers do not see the same run in --out (this one would "
            f"{'resume after epoch %d' % start if resuming else 'start a new run'}); --out must "
            "be one folder every worker of the cluster shares (an NFS mount, say)")


def _train_in(source, run, resuming, strategy, config, train_table, val_table, test_table,
              verbose):
    """Train from the checkpoint in `source` (when resuming), writing to `run`."""
    import keras

    if config.distribution == "multi-worker":
        _check_workers_agree(strategy, source, resuming)

    from gimefive_tf.data import class_weights, make_dataset, training_stream
    from gimefive_tf.data.augment import batch_mixer, image_augmentation, with_augmentation

    keras.utils.set_random_seed(config.seed)
    with strategy.scope():  # the model's and optimizer's variables live on every replica
        if resuming:
            import gimefive_tf.layers  # noqa: F401  (registers the custom layers)

            training_model = keras.saving.load_model(source / "last.keras", safe_mode=True)
            inference_model = inference_part(training_model)
        else:
            inference_model = _initial_model(config)
        image_size = inference_model.input_shape[1]
        num_classes = inference_model.output_shape[-1]
        steps_per_epoch = -(-len(train_table) // config.batch_size)
        augment = config.augment_config()
        if not resuming:
            augmentation = image_augmentation(augment, image_size, seed=config.seed)
            training_model = with_augmentation(inference_model, augmentation)
            compile_for_training(training_model, config, steps_per_epoch)
    if resuming:  # a rerun with another --epochs stretches the cosine to the new end
        schedule = getattr(training_model.optimizer, "_learning_rate", None)  # Keras keeps it
        if isinstance(schedule, keras.optimizers.schedules.CosineDecay):      # privately
            schedule.decay_steps = config.epochs * steps_per_epoch
    done = int(training_model.optimizer.iterations.numpy()) // steps_per_epoch if resuming else 0
    history = source.read_history()[:done]
    # --batch-size is the global batch: tf.distribute splits each over the replicas, so a run
    # takes the same steps, and the paper's batch of 16, on any number of them
    targets, teacher_agreement = run_targets(config, train_table, image_size, num_classes,
                                             source, run)
    stream, _ = training_stream(train_table, config.batch_size, image_size, seed=config.seed,
                                start_epoch=done, targets=targets)
    stream = _sharded_by_data(
        one_hot_batches(stream, num_classes, batch_mixer(augment, seed=config.seed)))
    val_batch = _replica_batch_size(len(val_table), 256, strategy.num_replicas_in_sync)
    val_dataset = _sharded_by_data(
        one_hot_batches(make_dataset(val_table, val_batch, image_size), num_classes))
    test_dataset = make_dataset(test_table, 256, image_size) if test_table else None
    recorder = _make_recorder(run, config, inference_model, steps_per_epoch, history, test_dataset)
    if done < config.epochs and not recorder.should_stop():
        training_model.fit(
            stream, epochs=config.epochs, initial_epoch=done, steps_per_epoch=steps_per_epoch,
            validation_data=val_dataset, verbose=verbose, shuffle=False,
            class_weight=class_weights(train_table, num_classes) if config.class_weights else None,
            callbacks=[recorder, keras.callbacks.TensorBoard(str(run / "tensorboard"),
                                                             write_graph=False)])
    if recorder.diverged:
        epoch, step, loss = recorder.diverged
        raise GiMeFiveError(f"training diverged: the loss became {loss} at epoch {epoch}, step "
                            f"{step}; that epoch was not saved (best.keras and last.keras hold "
                            "the last good one, if any); lower --learning-rate")
    history = recorder.history
    best = max(history, key=lambda r: r["val_accuracy"]) if history else {}
    return {"run": str(source.path), "epochs_run": len(history), "resumed_from_epoch": done,
            "best_epoch": best.get("epoch"), "best_val_accuracy": best.get("val_accuracy"),
            "stopped_early": recorder.should_stop(),
            "train_images": len(train_table), "val_images": len(val_table),
            "test_images": len(test_table) if test_table else 0,
            "train_seconds": round(sum(r["epoch_seconds"] for r in history), 1),
            **({"teachers_train_accuracy": round(teacher_agreement, 4)}
               if config.teachers else {})}


def _replica_batch_size(count, preferred, replicas):
    """The largest batch size up to `preferred` whose batches of `count` items each split over
    `replicas` with something for every replica (Keras cannot step on an empty one), or None."""
    return next((size for size in range(preferred, replicas - 1, -1)
                 if count % size == 0 or count % size >= replicas), None)


def _check_replica_batches(config, tables, replicas):
    """Refuse, before anything is written, batches that would leave a replica empty."""
    train_table, val_table, _ = tables
    count, size = len(train_table), config.batch_size
    if size < replicas:
        raise GiMeFiveError(f"--batch-size {size} cannot be split over {replicas} replicas; "
                            f"use at least {replicas}")
    if _replica_batch_size(count, size, replicas) != size:
        whole = count - count % size
        raise GiMeFiveError(f"{count} training images in batches of {size} leave "
                            f"{count % size} for the last batch of each epoch, too few to split "
                            f"over {replicas} replicas; change --batch-size"
                            + (f", or pass --limit {whole}" if whole else ""))
    if _replica_batch_size(len(val_table), 256, replicas) is None:
        raise GiMeFiveError(f"{len(val_table)} validation images cannot be split over "
                            f"{replicas} replicas; use more (--val-split or --val-data)")


def _sharded_by_data(dataset):
    """Each worker keeps its part of every global batch (tf.data's DATA auto-sharding). Not
    FILE sharding: the images come from one table, not from files to hand out. Every worker
    reads the same seeded stream, so the parts make up each epoch exactly once, every worker
    runs the same number of steps (none waits alone in a collective), and a resumed run's
    skip() stays right. Without a distribution the option does nothing."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def _initial_model(config):
    from gimefive_tf.models import create_model

    model = create_model(config.model, **config.model_options)
    if config.init_from:
        from gimefive_tf.loading import load_model

        source = inference_part(load_model(config.init_from))
        try:
            model.set_weights(source.get_weights())
        except ValueError as error:
            raise GiMeFiveError(f"--init-from {config.init_from} does not fit model "
                                f"{config.model}: {error}") from None
    return model


def _write_skipped(run, tables):
    skipped = dict(item for t in tables for item in t.skipped)  # splits of one read share it
    rows = ["source,reason"] + [f"{s},{r}" for s, r in skipped.items()]
    write_text(run / "skipped_images.csv", "\n".join(rows) + "\n")
    count = len(rows) - 1
    if count:
        print(f"skipped {count} unreadable image(s); listed in {run / 'skipped_images.csv'}",
              file=sys.stderr)
