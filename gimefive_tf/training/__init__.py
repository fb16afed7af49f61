"""Training: the run's config (config.py), the paper's recipe (recipe.py) and a resumable run
in its directory (run.py). `python -m gimefive_tf.train` is the command line over these."""

from gimefive_tf.training.config import DISTRIBUTIONS, OPTIMIZERS, SCHEDULES, TrainConfig
from gimefive_tf.training.recipe import (
    compile_for_training, distribution_strategy, load_tables, make_optimizer, one_hot_batches)
from gimefive_tf.training.run import (
    HISTORY_COLUMNS, RunDirectory, evaluate_logits, reseed_layers, save_model_atomically, train)

__all__ = ["DISTRIBUTIONS", "HISTORY_COLUMNS", "OPTIMIZERS", "SCHEDULES", "RunDirectory",
           "TrainConfig", "compile_for_training", "distribution_strategy", "evaluate_logits",
           "load_tables", "make_optimizer", "one_hot_batches", "reseed_layers",
           "save_model_atomically", "train"]
