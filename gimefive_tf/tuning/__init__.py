"""Hyperparameter search with KerasTuner over the paper's Table 4 space (CLI: gimefive_tf.tune)."""

from gimefive_tf.tuning.space import HYPERPARAMETERS, load_space
