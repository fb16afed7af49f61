"""The search: KerasTuner tuners that record every trial, and the results they leave in DIR.

DIR/kt/            KerasTuner's own project (oracle state, trials): what makes a rerun resume
DIR/workers/       one JSON per trial: which worker ran it, for how long, how many epochs
DIR/trials.csv     one row per trial, refreshed whenever a trial ends
DIR/best.keras, DIR/best_hyperparameters.yaml, DIR/trials.png   at the end of the search
"""

import json
import math
import os
import pathlib
import time

import keras_tuner
import yaml

from gimefive_tf.outputs import write_text
from gimefive_tf.tuning.space import HYPERPARAMETERS, ORACLE_NAMES

ORACLES = dict(zip(ORACLE_NAMES, (keras_tuner.GridSearch, keras_tuner.RandomSearch,
                                  keras_tuner.BayesianOptimization, keras_tuner.Hyperband)))
TRIAL_COLUMNS = ("trial_id", "status", *HYPERPARAMETERS, "val_accuracy", "epochs_run",
                 "seconds", "worker")


class TrialRecorder:
    """Tuner mixin: per-trial worker/time/epoch files and a refreshed trials.csv."""

    results_dir = None
    trial_bar = None  # a progress bar (tqdm) advanced by one per finished trial, if given

    def on_trial_begin(self, trial):
        self._trial_started = time.time()
        super().on_trial_begin(trial)

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        record = {"trial_id": trial.trial_id, "worker": self.tuner_id,
                  "seconds": round(time.time() - self._trial_started, 1),
                  "epochs_run": getattr(self.hypermodel, "epochs_run", None)}
        folder = pathlib.Path(self.results_dir) / "workers"
        folder.mkdir(parents=True, exist_ok=True)
        write_text(folder / f"{trial.trial_id}.json", json.dumps(record))
        rows = write_trials_csv(self.results_dir)
        if self.trial_bar is not None:
            scores = [r["val_accuracy"] for r in rows if r["val_accuracy"] is not None]
            self.trial_bar.update(1)
            if scores:
                self.trial_bar.set_postfix(best_val_accuracy=f"{max(scores):.4f}")


def make_tuner(oracle, hypermodel, out, max_trials, seed, max_epochs=None, strategy=None):
    """A KerasTuner tuner of the chosen oracle that records trials into `out`."""
    base = ORACLES[oracle]
    tuner_class = type(f"GiMeFive{base.__name__}", (TrialRecorder, base), {})
    kwargs = {"objective": keras_tuner.Objective("val_accuracy", "max"), "seed": seed,
              "directory": str(pathlib.Path(out) / "kt"), "project_name": "search",
              "overwrite": False, "max_consecutive_failed_trials": 3,
              "distribution_strategy": strategy}
    if oracle == "hyperband":
        kwargs.update(max_epochs=max_epochs, factor=3, hyperband_iterations=1)
    else:
        kwargs["max_trials"] = max_trials
    tuner = tuner_class(hypermodel, **kwargs)
    tuner.results_dir = str(out)
    if oracle == "hyperband" and max_trials:
        tuner.oracle.max_trials = max_trials
    return tuner


def read_trials(out):
    """Trial rows from KerasTuner's trial files plus the worker records, in trial order."""
    out = pathlib.Path(out)
    rows = []
    for path in sorted((out / "kt" / "search").glob("trial_*/trial.json")):
        trial = json.loads(path.read_text())
        values = trial["hyperparameters"]["values"]
        metric = trial.get("metrics", {}).get("metrics", {}).get("val_accuracy", {})
        observations = metric.get("observations", [])
        best = max((v for o in observations for v in o.get("value", [])), default=None)
        worker_file = out / "workers" / f"{trial['trial_id']}.json"
        worker = json.loads(worker_file.read_text()) if worker_file.exists() else {
            "epochs_run": len(observations) or None}  # without its record, KerasTuner's steps
        rows.append({"trial_id": trial["trial_id"], "status": trial["status"],
                     **{name: _typed(name, values.get(name)) for name in HYPERPARAMETERS},
                     "val_accuracy": best, "epochs_run": worker.get("epochs_run"),
                     "seconds": worker.get("seconds"), "worker": worker.get("worker")})
    return rows


def _typed(name, value):
    """KerasTuner stores boolean choices as 0/1; give them back as booleans."""
    if value is not None and HYPERPARAMETERS[name][0] is bool:
        return bool(value)
    return value


def write_trials_csv(out):
    import pandas as pd

    from gimefive_tf.outputs import atomic_path

    rows = read_trials(out)
    with atomic_path(pathlib.Path(out) / "trials.csv") as temporary:
        pd.DataFrame(rows, columns=TRIAL_COLUMNS).to_csv(temporary, index=False)
    return rows


def plot_trials(rows, space, path=None):
    """Validation accuracy per trial, and per value of each searched hyperparameter."""
    from matplotlib.figure import Figure

    from gimefive_tf.outputs import finish_figure

    done = [r for r in rows if r["val_accuracy"] is not None]
    searched = [name for name, choices in space.items() if len(choices) > 1]
    panels = 1 + len(searched)
    columns = min(4, panels)
    lines = math.ceil(panels / columns)
    figure = Figure(figsize=(4 * columns, 3 * lines))
    axes = figure.subplots(lines, columns, squeeze=False)
    axes = axes.ravel()
    axes[0].plot([int(r["trial_id"]) for r in done], [r["val_accuracy"] for r in done], "o-")
    axes[0].set_xlabel("trial")
    axes[0].set_ylabel("best val_accuracy")
    for axis, name in zip(axes[1:], searched):
        labels = [str(c) for c in space[name]]
        for position, choice in enumerate(space[name]):
            scores = [r["val_accuracy"] for r in done if r[name] == choice]
            axis.plot([position] * len(scores), scores, "o", alpha=0.7)
        axis.set_xticks(range(len(labels)), labels, rotation=30)
        axis.set_title(name, fontsize=9)
    for axis in axes[panels:]:
        axis.axis("off")
    figure.tight_layout()
    return finish_figure(figure, path, dpi=90)


def save_best(tuner, out):
    """best.keras and best_hyperparameters.yaml of the best finished trial."""
    from gimefive_tf.training import save_model_atomically

    best_hp = tuner.get_best_hyperparameters(1)
    if not best_hp:
        return None
    values = {k: _typed(k, v) for k, v in best_hp[0].values.items() if k in HYPERPARAMETERS}
    write_text(pathlib.Path(out) / "best_hyperparameters.yaml",
               yaml.safe_dump(values, sort_keys=False))
    import warnings

    with warnings.catch_warnings():  # trial checkpoints hold weights, not optimizer state
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        model = tuner.get_best_models(1)[0]
    save_model_atomically(model, pathlib.Path(out) / "best.keras", include_optimizer=False)
    return values


def split_tables(data, val_data=None, val_split=0.1, limit=None, seed=0, layout=None):
    """(train, validation) tables: `val_data`, or a stratified `val_split` carved from `data`;
    with `limit`, a stratified subset of that many training images (a quarter as many
    validation images) for quick searches."""
    from gimefive_tf.data import read_dataset, stratified_split

    train = read_dataset(data, layout=layout)
    if val_data:
        val = read_dataset(val_data, layout=layout)
    else:
        train, val = stratified_split(train, val_split, seed=seed)
    if limit and limit < len(train):
        train, _ = stratified_split(train, 1 - limit / len(train), seed=seed)
        val_limit = max(1, limit // 4)
        if val_limit < len(val):
            val, _ = stratified_split(val, 1 - val_limit / len(val), seed=seed)
    return train, val


def run_search(data, out="tuning/search", val_data=None, val_split=0.1, limit=None,
               space=None, oracle="random", max_trials=10, epochs=None, fix=(),
               distribution="none", seed=0, layout=None, progress=None):
    """KerasTuner over `space` (a YAML path; default: the paper's Table 4) on `data`: the whole
    job of `python -m gimefive_tf.tune`, resumable in `out` (finished trials are kept, an
    interrupted one is rerun, a higher `max_trials` extends the search). Writes trials.csv,
    trials.png and the best hyperparameters; returns the summary, with the unreadable images
    left out (None on a worker of a distributed search, where the chief reports). fix:
    "name=value" pins; epochs: a cap on every trial; distribution "mirrored": every local GPU
    per trial."""
    import keras

    from gimefive_tf.tuning.hypermodel import GiMeFiveHyperModel
    from gimefive_tf.tuning.space import SPACES_DIR, load_space, parse_fixed

    space = load_space(space or SPACES_DIR / "table4.yaml")
    fixed = parse_fixed([fix] if isinstance(fix, str) else list(fix), space)
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)
    train, val = split_tables(data, val_data, val_split, limit, seed, layout)
    hypermodel = GiMeFiveHyperModel(space, train, val, fixed, epochs, seed)
    max_epochs = epochs or max(space.get("epochs", [80]))
    strategy = None
    if distribution == "mirrored":
        from gimefive_tf.training.recipe import distribution_strategy

        strategy = distribution_strategy("mirrored")
    tuner = make_tuner(oracle, hypermodel, out, max_trials, seed, max_epochs, strategy)
    if progress is not None:
        tuner.trial_bar = progress(None, "trials", total=max_trials)  # shown on a terminal
    try:
        tuner.search(verbose=0)
    finally:
        if progress is not None:
            tuner.trial_bar.close()
    rows = write_trials_csv(out)
    if os.environ.get("KERASTUNER_TUNER_ID", "chief") != "chief":
        return None
    best = save_best(tuner, out)
    if best and epochs and "epochs" in best:  # trials ran at most `epochs` epochs
        best = {**best, "epochs": min(int(best["epochs"]), epochs)}
    if rows:
        plot_trials(rows, {**space, **{k: [v] for k, v in fixed.items()}}, out / "trials.png")
    scores = [r["val_accuracy"] for r in rows if r["val_accuracy"] is not None]
    skipped = dict(item for table in (train, val) for item in table.skipped)  # shared by splits
    return {"out": str(out), "trials": len(rows), "completed": len(scores),
            "best_val_accuracy": max(scores) if scores else None,
            "best_hyperparameters": best, "skipped": len(skipped),
            "skipped_images": [[source, reason] for source, reason in skipped.items()]}
