"""What every command-line entry point shares: error handling, JSON output, progress bars."""

import argparse
import json
import math
import sys

from gimefive_tf.errors import GiMeFiveError


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with a mistake on the command line reported like every other user error: one
    `error: ...` line and exit code 2 (run_cli), not the usage block."""

    def error(self, message):
        raise GiMeFiveError(f"{message} (see {self.prog} --help)")

    def parse_args(self, args=None, namespace=None):
        parsed = super().parse_args(args, namespace)
        if hasattr(parsed, "data_option"):
            _merge_data(self, parsed)
        return parsed


def run_cli(main, argv=None):
    """Run `main(argv)`; a GiMeFiveError becomes one `error: ...` line on stderr and exit code 2."""
    try:
        return main(argv) or 0
    except GiMeFiveError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a file system refusal the command did not foresee: one line
        where = f"{error.filename}: " if error.filename else ""
        print(f"error: {where}{error.strerror or error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def command(main):
    """The console-script entry point of `main(argv)`: exit with run_cli's status."""

    def entry_point():
        raise SystemExit(run_cli(main))

    return entry_point


def print_json(data):
    """Print `data` as indented JSON on stdout, for machines."""
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")


def print_skipped(skipped):
    """One stderr line per input a command left out ((source, reason) pairs), in text and JSON
    modes alike: how every command says it dropped something."""
    for source, reason in skipped:
        print(f"skipped {source}: {reason}", file=sys.stderr)


def progress(iterable, description, total=None, file=None):
    """A tqdm progress bar on stderr (or `file`), shown only when that is a terminal (the plain
    one: in a notebook, where stderr is no terminal, it stays off instead of asking for
    widgets). With iterable None, a bar to move by hand (`update()`, `close()`)."""
    from tqdm import tqdm

    return tqdm(iterable, desc=description, total=total, disable=None, leave=False, file=file)


def format_table(rows, columns):
    """Left-aligned plain-text table of `rows` (dicts) with the given (key, header) columns."""
    cells = [[header for _, header in columns]]
    cells += [[str(row[key]) for key, _ in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _model_help():
    from gimefive_tf.loading import DEFAULT_MODEL, SHIPPED, shipped_models

    names = ", ".join(f"{row['name']} ({row['data']}"
                      + (f", {100 * row['val_accuracy']:.1f}%% on its validation split"
                         if row["val_accuracy"] else "") + ")" for row in shipped_models())
    return (f"a .keras model, or a shipped model's name: {names or 'none installed'}; default: "
            f"the shipped {SHIPPED[DEFAULT_MODEL]['data']} model ({DEFAULT_MODEL})")


MODEL_HELP = _model_help()


def add_model_argument(parser, savedmodel=False):
    """--model, meaning the same in every command that uses a trained model (`savedmodel`: an
    export's SavedModel folder is taken too)."""
    if savedmodel:
        parser.add_argument("--model", metavar="PATH.keras|NAME|DIR", help=MODEL_HELP +
                            "; or an export's savedmodel/<name>/ folder")
    else:
        parser.add_argument("--model", metavar="PATH.keras|NAME", help=MODEL_HELP)


def add_data_arguments(parser, what="labeled dataset: a folder in any layout or a labels CSV",
                       several=False, required=True, limit=None, limit_help="images to use"):
    """What a command reads, one way in every command: positional DATA (or `--data DATA`, the
    same), `--layout` and `--limit N` (a seeded random subset; `limit` is its default, False
    leaves --limit to the command)."""
    from gimefive_tf.choices import LAYOUTS

    parser.add_argument("data", nargs="*" if several else "?", metavar="DATA",
                        help=what)
    parser.add_argument("--data", dest="data_option", action="append", metavar="DATA",
                        help="the same as DATA")
    parser.add_argument("--layout", choices=LAYOUTS, help="dataset layout (default: detected)")
    if limit is not False:
        parser.add_argument("--limit", type=positive_int, default=limit,
                            help=f"{limit_help} (default {limit or 'all'}; a seeded random subset)")
    parser.set_defaults(data_several=several, data_required=required)


def _merge_data(parser, args):
    positional = args.data if isinstance(args.data, list) else [args.data] if args.data else []
    data = positional + (args.data_option or [])
    several, required = args.data_several, args.data_required
    del args.data_option, args.data_several, args.data_required  # parsing state, not options
    if not data and required:
        parser.error("no data given: pass DATA, a dataset folder or labels CSV")
    if len(data) > 1 and not several:
        parser.error(f"one DATA is read here, not {len(data)}: {', '.join(data)}")
    args.data = data if several else (data[0] if data else None)


def add_face_arguments(parser, crop_help=None, turned=True):
    """--detector and --framing (and --crop when `crop_help` is given, --upright-only unless
    `turned` is False: video frames are never searched turned): the same face choices for
    every command that finds faces in pictures."""
    from gimefive_tf.faces import DEFAULT_DETECTOR, DETECTORS, FRAMINGS

    parser.add_argument("--detector", choices=DETECTORS, default=DEFAULT_DETECTOR,
                        help=f"face detector (default {DEFAULT_DETECTOR}: MediaPipe's BlazeFace; "
                             "mtcnn: slower; haar: OpenCV's cascade)")
    parser.add_argument("--framing", choices=FRAMINGS,
                        help="how a face is cut like the training faces: the calibrated box, "
                             "the eyes or all landmarks aligned to the training template "
                             "(default: the calibration's measured best)")
    if turned:
        parser.add_argument("--upright-only", action="store_true",
                            help="search pictures only as stored (default: a picture with no "
                                 "face upright is searched again turned by 90, 270 and 180 "
                                 "degrees, as phones store some pictures without saying so)")
    if crop_help:
        from gimefive_tf.analyze import CROPS

        parser.add_argument("--crop", choices=CROPS, default="face", help=crop_help)


# ------------------------------------------------------------------ argument types (parse time)

def whole_number(minimum):
    """An argparse type: a whole number of at least `minimum`."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} must be at least {minimum}")
        return value
    parse.__name__ = "whole number"
    return parse


positive_int = whole_number(1)      # batch sizes, limits, frame counts, epochs
non_negative_int = whole_number(0)  # seeds


def finite_float(low=None, high=None, low_open=False, high_open=False):
    """An argparse type: a finite number within [low, high] (open ends where asked)."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text} is not a finite number")
        if low is not None and (value < low or (low_open and value == low)):
            raise argparse.ArgumentTypeError(
                f"{value:g} must be {'more than' if low_open else 'at least'} {low:g}")
        if high is not None and (value > high or (high_open and value == high)):
            raise argparse.ArgumentTypeError(
                f"{value:g} must be {'less than' if high_open else 'at most'} {high:g}")
        return value
    parse.__name__ = "number"
    return parse


positive_float = finite_float(0, low_open=True)
fraction = finite_float(0, 1, low_open=True, high_open=True)


RECORDS_JSON_HELP = ("print JSON for machines: one record per face (input, face, box [x, y, w, h], "
                     "emotion, scores)")


def print_face_results(results, inputs, as_json=False):
    """What predict and ondevice print of the face pipeline's FaceResults for `inputs` pictures:
    one error when none could be read, a `skipped` line for each one that could not, then the
    records (one per face, or one per picture without a face, with the reason) as JSON or as a
    table."""
    from gimefive_tf.analyze import NO_FACE
    from gimefive_tf.labels import EMOTIONS

    unreadable = [r for r in results if r.scores is None and r.reason != NO_FACE]
    if len(unreadable) == inputs:
        raise GiMeFiveError(unreadable[0].reason if inputs == 1 else
                            f"none of the {inputs} inputs is a readable image")
    print_skipped((result.input, result.reason) for result in unreadable)
    records = [result.to_dict() for result in results]
    if as_json:
        print_json(records)
        return
    table = [{"input": r["input"], "face": "-" if r["face"] is None else r["face"],
              "emotion": r["emotion"] or r.get("reason"),
              **{e: f"{r['scores'][e]:.2f}" if r["scores"] else "-" for e in EMOTIONS},
              "box": " ".join(map(str, r["box"])) if r["box"] else "-"} for r in records]
    columns = [("input", "input"), ("face", "face"), ("emotion", "emotion")] + \
        [(e, e) for e in EMOTIONS] + [("box", "box x y w h")]
    print(format_table(table, columns))
