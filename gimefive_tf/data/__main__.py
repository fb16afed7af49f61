"""`python -m gimefive_tf.data <verb>`: dataset statistics, splits, merging, export and the
face pipeline's crops of a dataset's faces (scene-crops)."""

import pathlib
import sys

from gimefive_tf.cli import (
    ArgumentParser, add_face_arguments, add_model_argument, command, format_table, fraction,
    non_negative_int, positive_float, positive_int, print_json, print_skipped, progress)
from gimefive_tf.choices import FER2013_USAGES, LAYOUTS
from gimefive_tf.errors import GiMeFiveError
from gimefive_tf.labels import EMOTIONS


def build_parser():
    parser = ArgumentParser(
        prog="gimefive-data",
        description="Inspect and reshape facial-expression datasets in any public layout "
                    f"({', '.join(LAYOUTS)}; detected unless --layout is given).")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name, help_text, reshapes=False, writes=False):
        sub = verbs.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--layout", choices=LAYOUTS, help="dataset layout (default: detected)")
        if reshapes:
            sub.add_argument("--drop-duplicates", action="store_true",
                             help="keep one row per image where several rows name it (default: "
                                  "keep them all and say how many)")
        if reshapes or writes:
            sub.add_argument("--overwrite", action="store_true",
                             help="write into a non-empty --out, replacing files of the same "
                                  "names")
        return sub

    stats = verb("stats", "per-class counts of one or more datasets (the paper's Table 1)")
    stats.add_argument("paths", nargs="+", metavar="PATH",
                       help="dataset folder, labels CSV or fer2013.csv")
    stats.add_argument("--usage", action="append", choices=FER2013_USAGES,
                       help="fer2013.csv rows to count (default: all; repeatable)")
    stats.add_argument("--plot", metavar="PNG", help="also draw the counts as a bar chart")
    stats.add_argument("--skipped-log", metavar="CSV",
                       help="write the unreadable images found to this file")
    stats.add_argument("--json", action="store_true", help="print JSON for machines")
    stats.add_argument("--overwrite", action="store_true",
                       help="replace an existing --plot or --skipped-log file")

    split = verb("split", "write a stratified, seeded train/validation split as labels CSVs",
                 reshapes=True)
    split.add_argument("path", metavar="PATH")
    split.add_argument("--out", required=True, help="folder for train_labels.csv, val_labels.csv")
    split.add_argument("--val-split", type=fraction, default=0.1, help="validation fraction (0.1)")
    split.add_argument("--seed", type=non_negative_int, default=0)
    split.add_argument("--json", action="store_true")

    export = verb("export-csv", "normalize any layout into the GiMeFive csv layout (64x64 JPG)",
                  reshapes=True)
    export.add_argument("path", metavar="PATH")
    export.add_argument("--out", required=True, help="new folder for images and labels CSVs")
    export.add_argument("--size", type=positive_int, default=64, help="image side in pixels (64)")
    export.add_argument("--usage", action="append", choices=FER2013_USAGES)
    export.add_argument("--json", action="store_true")

    merge = verb("merge", "aggregate several datasets into one (the paper's FER GiMeFive set)",
                 reshapes=True)
    merge.add_argument("paths", nargs="+", metavar="PATH")
    merge.add_argument("--out", required=True, help="new folder for the merged set")
    merge.add_argument("--size", type=positive_int, default=64)
    merge.add_argument("--json", action="store_true")

    frames = verb("extract-frames", "cut face crops from videos into a labeled csv-layout set",
                  writes=True)
    frames.add_argument("videos", nargs="+", metavar="VIDEO")
    frames.add_argument("--out", required=True, help="new folder for the frames and labels CSV")
    step = frames.add_mutually_exclusive_group()
    step.add_argument("--every", type=positive_int, help="keep every N-th frame")
    step.add_argument("--fps", type=positive_float, help="keep this many frames per second")
    frames.add_argument("--label", help="emotion of every frame (name or 0..5)")
    frames.add_argument("--size", type=positive_int, default=64)
    add_face_arguments(frames, turned=False)
    frames.add_argument("--json", action="store_true")

    scenes = verb("scene-crops", "show every face in a picture as a camera would (placed, lit, "
                  "JPEG-compressed) and cut it back out with the face pipeline: training faces "
                  "as photos and video give them", reshapes=True)
    scenes.add_argument("path", metavar="PATH", help="dataset folder or labels CSV of training "
                        "faces only: the crops show the same faces (train on them with "
                        "--val-data naming faces that are in neither)")
    scenes.add_argument("--split", help="use only this split of PATH (e.g. train); required "
                        "when PATH holds several")
    scenes.add_argument("--out", required=True, help="new folder for the crops and labels CSV")
    scenes.add_argument("--seed", type=non_negative_int, default=0,
                        help="seed of the pictures (0); each face's depends on it and its row")
    scenes.add_argument("--copies", type=positive_int, default=1,
                        help="pictures per face (1), each cut once")
    scenes.add_argument("--with-source", action="store_true",
                        help="the labels CSV also names the dataset's own images, so one DATA "
                             "trains on both")
    scenes.add_argument("--size", type=positive_int, default=64,
                        help="side of the faces as read and of the crops written (64)")
    add_model_argument(scenes)  # whose framing calibration cuts the crops
    add_face_arguments(scenes, turned=False)
    scenes.add_argument("--json", action="store_true")
    return parser


def _read(path, layout, usage=None):
    from gimefive_tf.data.readers import read_dataset

    return read_dataset(path, layout=layout, usage=usage)


def stats(args):
    from gimefive_tf.outputs import claim_file

    if args.plot:
        claim_file(args.plot, args.overwrite, "--plot")
    if args.skipped_log:
        claim_file(args.skipped_log, args.overwrite, "--skipped-log")
    tables = [_read(p, args.layout, args.usage) for p in progress(args.paths, "reading")]
    summaries = [t.summary() for t in tables]
    if args.skipped_log:
        from gimefive_tf.data.tools import write_labels_csv

        write_labels_csv(args.skipped_log, [row for t in tables for row in t.skipped],
                         header=("source", "reason"))
    if args.plot:
        from gimefive_tf.data.tools import plot_counts

        plot_counts(summaries, args.plot)
    for table in tables:  # every unreadable image, in text and JSON modes alike
        print_skipped(table.skipped)
    if args.json:
        print_json(summaries[0] if len(summaries) == 1 else summaries)
        return
    columns = [("path", "dataset"), ("layout", "layout")] + [(e, e) for e in EMOTIONS] + [
        ("total", "total"), ("dropped", "dropped"), ("skipped", "skipped"),
        ("duplicates", "duplicates")]
    rows = [{**s, **s["per_class"], "dropped": sum(s["dropped"].values()) or 0} for s in summaries]
    print(format_table(rows, columns))
    for table in tables:
        if table.duplicates():
            print(f"{table.root}: {table.duplicates()} row(s) name an image another row already "
                  "names; they count twice in training", file=sys.stderr)


def split(args):
    from gimefive_tf.data.tools import split_to_csv

    _claim_out(args)
    table = _reshaped(args, args.path)
    result = split_to_csv(table, args.out, args.val_split, args.seed, args.overwrite)
    if args.json:
        print_json({**result, **_dropped(table)})
    else:
        print(f"train {result['train']['total']} / val {result['val']['total']} images: "
              f"{', '.join(result['files'])}")


def export_csv(args):
    from gimefive_tf.data.tools import export_to_csv_layout

    _claim_out(args)
    table = _reshaped(args, args.path, args.usage)
    bar = lambda items, total: progress(items, "exporting", total=total)
    written = export_to_csv_layout(table, args.out, args.size, progress=bar,
                                   overwrite=args.overwrite)
    result = {split_name: {"csv": str(csv_path), "images": len(rows)}
              for split_name, (csv_path, rows) in written.items()}
    if args.json:
        print_json({**result, **_dropped(table)})
    else:
        for split_name, info in result.items():
            print(f"{split_name}: {info['images']} images, labels in {info['csv']}")


def merge(args):
    from gimefive_tf.data.tools import merge_to_csv_layout

    resolved = [pathlib.Path(p).resolve() for p in args.paths]
    twice = sorted({str(p) for p in args.paths if resolved.count(pathlib.Path(p).resolve()) > 1})
    if twice:
        raise GiMeFiveError(f"{', '.join(twice)} given more than once; merge each dataset once")
    _claim_out(args)
    tables = [_reshaped(args, p) for p in args.paths]
    tables, named_again = _across_datasets(tables, args.drop_duplicates)
    bar = lambda items, total: progress(items, "merging", total=total)
    target, count = merge_to_csv_layout(tables, args.out, args.size, progress=bar,
                                        overwrite=args.overwrite)
    if args.json:
        dropped = [_dropped(table) for table in tables]
        print_json({"csv": str(target), "images": count,
                    "skipped": sum(d["skipped"] for d in dropped),
                    "duplicates": sum(d["duplicates"] for d in dropped),
                    "named_by_another_dataset": named_again})
    else:
        print(f"{count} images from {len(tables)} datasets, labels in {target}")


def extract_frames(args):
    from gimefive_tf.data.frames import extract_frames as extract

    _claim_out(args)
    result = extract(args.videos, args.out, every=args.every, fps=args.fps, label=args.label,
                     size=args.size, detector=args.detector, framing=args.framing,
                     progress=progress, overwrite=args.overwrite)
    if args.json:
        print_json(result)
    else:
        print(f"{result['written']} face crops from {result['frames_read']} frames "
              f"({result['frames_without_face']} frames without a face); labels in "
              f"{result['csv']}")


def scene_crops(args):
    from gimefive_tf.data.readers import detect_layout
    from gimefive_tf.data.scene_crops import PIXELS_WITHOUT_FILES, write_scene_crops

    if (args.with_source and pathlib.Path(args.path).exists()
            and (args.layout or detect_layout(args.path)) == "fer2013"):
        raise GiMeFiveError(PIXELS_WITHOUT_FILES)  # before a word on its skipped rows
    _claim_out(args)
    table = _reshaped(args, args.path)
    if args.split:
        table = table.select_split(args.split)
    elif len(table.splits()) > 1:  # a validation face among the crops would flatter the model
        raise GiMeFiveError(f"{args.path} holds the splits {', '.join(table.splits())}; pass "
                            "--split with the training one (the crops show the same faces)")
    result = write_scene_crops(table, args.out, args.seed, args.copies, args.with_source,
                               args.size, args.detector, args.framing, args.model,
                               progress=progress, overwrite=args.overwrite)
    if args.json:
        print_json({**result, **_dropped(table)})
    else:
        print(f"{result['written']} face crops from {result['faces'] * result['copies']} "
              f"pictures ({result['not_found']} without their face found)"
              + (f", plus {result['source_rows']} source images" if args.with_source else "")
              + f"; labels in {result['csv']}")


def _claim_out(args):
    """--out as every command claims it: a non-empty folder only with --overwrite (made by the
    verb once its input has been read)."""
    from gimefive_tf.outputs import claim_folder

    claim_folder(args.out, args.overwrite, create=False)


def _dropped(table):
    """What a reshaping verb's --json says it left out or kept twice."""
    return {"skipped": len(table.skipped), "duplicates": table.duplicates()}


def _across_datasets(tables, drop):
    """The merge's tables, images an earlier dataset already names said on stderr."""
    from gimefive_tf.data.tools import named_by_earlier

    tables, count = named_by_earlier(tables, drop)
    if count and drop:
        print(f"dropped {count} image(s) that an earlier dataset already names",
              file=sys.stderr)
    elif count:
        print(f"{count} image(s) are named by more than one dataset; each copy kept (pass "
              "--drop-duplicates to keep one)", file=sys.stderr)
    return tables, count


def _reshaped(args, path, usage=None):
    """The table a reshaping verb writes out: every unreadable image or row it skips said on
    stderr (as stats says it); duplicate rows dropped when asked, else kept and counted on
    stderr."""
    table = _read(path, args.layout, usage)
    print_skipped(table.skipped)
    count = table.duplicates()
    if count and args.drop_duplicates:
        print(f"{table.root}: dropped {count} duplicate row(s)", file=sys.stderr)
        return table.without_duplicates()
    if count:
        print(f"{table.root}: {count} row(s) name an image another row already names; kept "
              "(pass --drop-duplicates to keep one)", file=sys.stderr)
    return table


def main(argv=None):
    args = build_parser().parse_args(argv)
    {"stats": stats, "split": split, "export-csv": export_csv, "merge": merge,
     "extract-frames": extract_frames, "scene-crops": scene_crops}[args.verb](args)
    return 0


entry_point = command(main)


if __name__ == "__main__":
    entry_point()
