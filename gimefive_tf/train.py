"""`python -m gimefive_tf.train`: the paper's training recipe, resumable, in a run directory.

Defaults reproduce the paper: cross-entropy, SGD lr 1e-3 momentum 0.9 weight decay 1e-4, batch 16,
early stopping on validation accuracy (patience 15, at most 80 epochs), no augmentation.

The run directory holds config.yaml (everything needed to rerun, seed included), best.keras (best
validation accuracy, inference model), last.keras (with optimizer state, for resuming),
history.csv, curves.png, skipped_images.csv and a TensorBoard log. Re-running the same command
on the same directory resumes after the last finished epoch; a different config is refused.
--distribution spreads the run over GPUs or machines (tf.distribute) with the same recipe;
--teacher distills trained models into it (training/teachers.py).
"""

import pathlib
import sys

import yaml

from gimefive_tf.cli import (
    ArgumentParser, add_data_arguments, command, finite_float, fraction, non_negative_int,
    positive_int, print_json)
from gimefive_tf.errors import GiMeFiveError, yaml_problem
from gimefive_tf.models.presets import available
from gimefive_tf.training import DISTRIBUTIONS, OPTIMIZERS, SCHEDULES, TrainConfig, train


def build_parser():
    parser = ArgumentParser(
        prog="gimefive-train",
        description="Train a zoo model with the paper's recipe (or a variant). Re-running the "
                    "same command on the same --out resumes after the last finished epoch.")
    add = parser.add_argument
    add("--architecture", dest="model", choices=available(),
        help="zoo preset to build and train (default gimefive)")
    add("--model", dest="start_from", metavar="PATH.keras|NAME",
        help="start from this trained model's weights (a .keras file or a shipped name, e.g. "
             "rafdb); the same as --init-from")
    add("--option", action="append", default=[], metavar="KEY=VALUE",
        help="model config override, e.g. --option conv_depth=4 (repeatable)")
    add_data_arguments(parser, "training data: a dataset folder in any layout or a labels CSV",
                       required=False, limit_help="training images to use, after the "
                       "validation split")
    add("--split", help="use only this split of --data (e.g. train)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--val-data", help="validation data (default: carve --val-split from --data)")
    group.add_argument("--val-split", type=fraction, help="stratified validation fraction (0.1)")
    add("--test-data", help="test data, evaluated after every epoch and logged")
    add("--epochs", type=positive_int, help="maximum epochs (80)")
    add("--batch-size", type=positive_int, help="batch size (16); with --distribution the "
        "global batch, split evenly over all replicas (GPUs, workers)")
    add("--optimizer", choices=OPTIMIZERS, help="sgd (paper), adam or adamw")
    add("--learning-rate", "--lr", type=finite_float(0), help="learning rate (1e-3)")
    add("--momentum", type=finite_float(0, 1, high_open=True), help="SGD momentum (0.9)")
    add("--weight-decay", type=finite_float(0), help="weight decay (1e-4)")
    add("--label-smoothing", type=finite_float(0, 1, high_open=True), help="label smoothing (0)")
    add("--ema", type=finite_float(0, 1, high_open=True), metavar="MOMENTUM",
        help="keep an exponential moving average of the weights with this momentum (e.g. "
             "0.999); validation, best.keras and the summary score the average, last.keras "
             "keeps both to resume (default 0: none)")
    add("--class-weights", action="store_true", default=None, help="weight classes by frequency")
    add("--schedule", choices=SCHEDULES, help="learning-rate schedule (none)")
    add("--patience", type=positive_int, help="early-stopping patience in epochs (15)")
    add("--no-early-stopping", dest="early_stopping", action="store_false", default=None)
    add("--augment", action="append", default=[], metavar="KEY=VALUE",
        help="augmentation, e.g. --augment flip=true --augment rotation=10 (repeatable)")
    add("--init-from", help="start from the weights of this .keras model")
    add("--teacher", dest="teachers", action="append", metavar="PATH.keras|NAME",
        help="distill: a trained model (.keras file or shipped name) whose probabilities on "
             "each training image (unaugmented, mirror-averaged; the mean over all teachers, "
             "repeatable) are blended into its label; scored once, kept in the run directory")
    add("--teacher-weight", type=finite_float(0, 1), metavar="W",
        help="the teachers' share of each training target (0.5); the label keeps 1 - W "
             "(--label-smoothing applies on top)")
    add("--config", help="YAML file of options (command-line options win)")
    add("--out", help="run directory (default: runs/<model>-<data>-s<seed>)")
    add("--seed", type=non_negative_int, help="random seed (0)")
    add("--distribution", choices=DISTRIBUTIONS,
        help="none (default): one device; mirrored: every GPU of this machine; multi-worker: "
             "every machine of the TF_CONFIG cluster, each running this same command with the "
             "same --out on a shared folder (the chief writes the run). A run may resume "
             "under another distribution")
    add("--verbose", type=int, choices=(0, 1, 2), help="Keras fit verbosity (1 on a terminal, "
        "else 2: one line per epoch)")
    add("--json", action="store_true", help="print the run summary as JSON")
    return parser


def config_from_args(args):
    values = {}
    if args.config:
        path = pathlib.Path(args.config)
        if not path.is_file():
            raise GiMeFiveError(f"--config {path} does not exist")
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            raise GiMeFiveError(f"--config {path} is {yaml_problem(error)}") from None
        if not isinstance(values, dict):
            raise GiMeFiveError(f"--config {path} must hold a mapping of options")
    for key in ("model", "data", "layout", "split", "val_data", "val_split", "test_data", "limit",
                "epochs", "batch_size", "optimizer", "learning_rate", "momentum",
                "weight_decay", "label_smoothing", "ema", "class_weights", "schedule", "patience",
                "early_stopping", "init_from", "teachers", "teacher_weight", "seed",
                "distribution"):
        value = getattr(args, key)
        if value is not None:
            values[key] = value
    if args.start_from:
        if args.init_from and args.init_from != args.start_from:
            raise GiMeFiveError("--model and --init-from name two starting models; pass one")
        if args.start_from in available() and not pathlib.Path(args.start_from).exists():
            raise GiMeFiveError(f"--model takes a trained model to start from; to build a new "
                                f"{args.start_from!r}, pass --architecture {args.start_from}")
        from gimefive_tf.loading import model_file

        values["init_from"] = str(model_file(args.start_from))
    if values.get("teachers") and isinstance(values["teachers"], list):
        values["teachers"] = [teacher_path(teacher) for teacher in values["teachers"]]
    elif args.teacher_weight is not None or values.get("teacher_weight", 0.5) != 0.5:
        raise GiMeFiveError("--teacher-weight needs at least one --teacher")
    if args.val_data:
        values.pop("val_split", None)
    if args.option:
        values["model_options"] = {**values.get("model_options", {}),
                                   **parse_assignments(args.option, "--option")}
    if args.augment:
        values["augment"] = {**values.get("augment", {}),
                             **parse_assignments(args.augment, "--augment")}
    return TrainConfig.from_dict(values, source=args.config or "command line")


def teacher_path(teacher):
    """A teacher as the run records it: a shipped name becomes its file, as --model does. Not
    checked here: a resumed run keeps its teachers' scores and no longer needs their files."""
    if not isinstance(teacher, str) or not teacher:
        return teacher  # TrainConfig refuses it in one line
    from gimefive_tf.loading import model_path

    return str(model_path(teacher))


def parse_assignments(items, flag):
    """['a=1', 'b=true'] -> {'a': 1, 'b': True}, values parsed as YAML scalars."""
    parsed = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise GiMeFiveError(f"{flag} {item!r} must look like KEY=VALUE")
        parsed[key.strip()] = yaml.safe_load(value)
    return parsed


def default_out(config):
    name = pathlib.Path(config.data.rstrip("/")).stem or "data"
    return pathlib.Path("runs") / f"{config.model}-{name}-s{config.seed}"


def main(argv=None):
    args = build_parser().parse_args(argv)
    config = config_from_args(args)
    out = pathlib.Path(args.out) if args.out else default_out(config)
    verbose = args.verbose if args.verbose is not None else (1 if sys.stdout.isatty() else 2)
    summary = train(config, out, verbose=0 if args.json else verbose)
    if args.json:
        print_json(summary)
    else:
        print(f"run {summary['run']}: best val_accuracy {summary['best_val_accuracy']:.4f} at "
              f"epoch {summary['best_epoch']} of {summary['epochs_run']}")
    return 0


entry_point = command(main)


if __name__ == "__main__":
    entry_point()
