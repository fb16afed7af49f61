"""`python -m gimefive_tf.tune`: KerasTuner over a search space (default: the paper's Table 4).

Rerunning the same command continues the search: finished trials are kept, an interrupted one is
rerun, and a higher --max-trials extends it. The same command runs distributed when KerasTuner's
KERASTUNER_TUNER_ID / KERASTUNER_ORACLE_IP / KERASTUNER_ORACLE_PORT variables are set (one
process with KERASTUNER_TUNER_ID=chief, workers with any other id, all sharing --out).
"""

from gimefive_tf.cli import (
    ArgumentParser, add_data_arguments, command, fraction, non_negative_int, positive_int,
    print_json, print_skipped, progress)
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


def main(argv=None):
    args = build_parser().parse_args(argv)  # first: --help and mistakes answer at once
    from gimefive_tf.tuning.search import run_search

    summary = run_search(args.data, args.out, args.val_data, args.val_split, args.limit,
                         args.space, args.oracle, args.max_trials, args.epochs, args.fix,
                         args.distribution, args.seed, args.layout, progress=progress)
    if summary is None:  # a worker of a distributed search: the chief reports
        return 0
    print_skipped(summary["skipped_images"])
    if args.json:
        print_json(summary)
    else:
        best = summary["best_hyperparameters"]
        best_text = ", ".join(f"{k}={v}" for k, v in (best or {}).items())
        best_score = summary["best_val_accuracy"]
        print(f"{summary['trials']} trials in {summary['out']}: best val_accuracy "
              f"{'-' if best_score is None else round(best_score, 4)} with {best_text}")
    return 0


entry_point = command(main)


if __name__ == "__main__":
    entry_point()
