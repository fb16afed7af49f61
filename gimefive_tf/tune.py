"""`python -m gimefive_tf.tune`: KerasTuner over a search space (default: the paper's Table 4).

Rerunning the same command continues the search: finished trials are kept, an interrupted one is
rerun, and a higher --max-trials extends it. The same command runs distributed when KerasTuner's
KERASTUNER_TUNER_ID / KERASTUNER_ORACLE_IP / KERASTUNER_ORACLE_PORT variables are set (one
process with KERASTUNER_TUNER_ID=chief, workers with any other id, all sharing --out).
"""

import os
import pathlib

from gimefive_tf.cli import (
    ArgumentParser, add_data_arguments, command, fraction, non_negative_int, positive_int,
    print_json, progress)
from gimefive_tf.tuning.space import ORACLE_NAMES, SPACES_DIR


def build_parser():
    parser = ArgumentParser(prog="gimefive-tune", description=__doc__.split("\n\n")[0])
    add_data_arguments(parser, "training data: a dataset folder in any layout or a labels CSV",
                       limit=False)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--val-data", help="validation data (default: carve --val-split)")
    group.add_argument("--val-split", type=fraction, default=0.1,
                       help="validation fraction (0.1)")
    parser.add_argument("--limit", type=positive_int, help="use a stratified subset of this many "
                        "training images (quick searches)")
    parser.add_argument("--space", default=str(SPACES_DIR / "table4.yaml"),
                        help="search space YAML (default: tuning/table4.yaml, the paper's)")
    parser.add_argument("--oracle", choices=ORACLE_NAMES, default="random",
                        help="grid (the paper's), random, bayesian or hyperband (random)")
    parser.add_argument("--max-trials", type=positive_int, default=10, help="trials in all (10)")
    parser.add_argument("--epochs", type=positive_int, help="cap every trial at this many epochs")
    parser.add_argument("--fix", action="append", default=[], metavar="NAME=VALUE",
                        help="pin a hyperparameter, e.g. --fix optimizer=sgd (repeatable)")
    parser.add_argument("--out", default="tuning/search", help="results folder (tuning/search)")
    parser.add_argument("--distribution", choices=("none", "mirrored"), default="none",
                        help="mirrored: train each trial on all local GPUs "
                             "(tf.distribute.MirroredStrategy)")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    return parser


def load_tables(args):
    from gimefive_tf.data import read_dataset, stratified_split

    train = read_dataset(args.data, layout=args.layout)
    if args.val_data:
        val = read_dataset(args.val_data, layout=args.layout)
    else:
        train, val = stratified_split(train, args.val_split, seed=args.seed)
    if args.limit and args.limit < len(train):
        train, _ = stratified_split(train, 1 - args.limit / len(train), seed=args.seed)
        val_limit = max(1, args.limit // 4)
        if val_limit < len(val):
            val, _ = stratified_split(val, 1 - val_limit / len(val), seed=args.seed)
    return train, val


def main(argv=None):
    args = build_parser().parse_args(argv)  # first: --help and mistakes answer at once
    import keras

    from gimefive_tf.tuning.hypermodel import GiMeFiveHyperModel
    from gimefive_tf.tuning.search import make_tuner, plot_trials, save_best, write_trials_csv
    from gimefive_tf.tuning.space import load_space, parse_fixed

    space = load_space(args.space)
    fixed = parse_fixed(args.fix, space)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(args.seed)
    train, val = load_tables(args)
    hypermodel = GiMeFiveHyperModel(space, train, val, fixed, args.epochs, args.seed)
    max_epochs = args.epochs or max(space.get("epochs", [80]))
    strategy = None
    if args.distribution == "mirrored":
        from gimefive_tf.training.recipe import distribution_strategy

        strategy = distribution_strategy("mirrored")
    tuner = make_tuner(args.oracle, hypermodel, out, args.max_trials, args.seed, max_epochs,
                       strategy)
    tuner.trial_bar = progress(None, "trials", total=args.max_trials)  # shown on a terminal
    try:
        tuner.search(verbose=0)
    finally:
        tuner.trial_bar.close()
    chief_or_alone = os.environ.get("KERASTUNER_TUNER_ID", "chief") == "chief"
    rows = write_trials_csv(out)
    if not chief_or_alone:
        return 0
    best = save_best(tuner, out)
    if best and args.epochs and "epochs" in best:  # trials ran at most --epochs epochs
        best = {**best, "epochs": min(int(best["epochs"]), args.epochs)}
    if rows:
        plot_trials(rows, {**space, **{k: [v] for k, v in fixed.items()}}, out / "trials.png")
    scores = [r["val_accuracy"] for r in rows if r["val_accuracy"] is not None]
    summary = {"out": str(out), "trials": len(rows), "completed": len(scores),
               "best_val_accuracy": max(scores) if scores else None,
               "best_hyperparameters": best}
    if args.json:
        print_json(summary)
    else:
        best_text = ", ".join(f"{k}={v}" for k, v in (best or {}).items())
        best_score = summary["best_val_accuracy"]
        print(f"{len(rows)} trials in {out}: best val_accuracy "
              f"{'-' if best_score is None else round(best_score, 4)} with {best_text}")
    return 0


entry_point = command(main)


if __name__ == "__main__":
    entry_point()
