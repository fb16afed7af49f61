"""`python -m gimefive_tf.models`: print the model zoo (the paper's Table 2) and the shipped,
trained models, as tables or JSON."""


from gimefive_tf.cli import ArgumentParser, command, format_table, print_json, progress
from gimefive_tf.models.presets import available, create_model, get_preset
from gimefive_tf.models.summary import describe

COLUMNS = [("name", "name"), ("layers", "layers"), ("params", "trainable params"),
           ("size_mb", "size MB"), ("gflops", "GFLOPs/image"), ("paper_row", "paper (Table 2)")]


def build_parser():
    parser = ArgumentParser(
        prog="gimefive-models",
        description="List the model zoo: paper depth, trainable parameters, float32 size and "
                    "forward GFLOPs per 64x64 image for each preset.")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"presets to show (default: all of {', '.join(available())})")
    parser.add_argument("--shipped", action="store_true",
                        help="only the shipped, trained models (names for --model)")
    parser.add_argument("--json", action="store_true", help="print a JSON list for machines")
    return parser


SHIPPED_COLUMNS = [("name", "name"), ("data", "trained on"), ("accuracy", "val accuracy"),
                   ("size_mb", "size MB"), ("default", "default"), ("card", "model card")]


def shipped_table():
    from gimefive_tf.loading import shipped_models

    rows = [{**row, "accuracy": f"{100 * row['val_accuracy']:.2f}%" if row["val_accuracy"]
             else "-", "default": "yes" if row["default"] else ""} for row in shipped_models()]
    return format_table(rows, SHIPPED_COLUMNS)


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.shipped:
        from gimefive_tf.loading import shipped_models

        if args.json:
            print_json(shipped_models())
        else:
            print(shipped_table())
        return 0
    presets = [get_preset(name) for name in (args.names or available())]
    rows = [describe(create_model(p.name), p) for p in progress(presets, "building models")]
    if args.json:
        print_json(rows)
    else:
        for row in rows:
            row["params"] = f"{row['params']:,}"
        print(format_table(rows, COLUMNS))
        if not args.names:
            print("\nshipped models (--model NAME):")
            print(shipped_table())
    return 0


entry_point = command(main)


if __name__ == "__main__":
    entry_point()
