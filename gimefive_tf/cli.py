"""What every command-line entry point shares: error handling, JSON output, progress bars."""

import json
import sys

from gimefive_tf.errors import GiMeFiveError


def run_cli(main, argv=None):
    """Run `main(argv)`; a GiMeFiveError becomes one `error: ...` line on stderr and exit code 2."""
    try:
        return main(argv) or 0
    except GiMeFiveError as error:
        print(f"error: {error}", file=sys.stderr)
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


def progress(iterable, description, total=None):
    """A tqdm progress bar on stderr, shown only when stderr is a terminal."""
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=description, total=total, disable=None, leave=False)


def format_table(rows, columns):
    """Left-aligned plain-text table of `rows` (dicts) with the given (key, header) columns."""
    cells = [[header for _, header in columns]]
    cells += [[str(row[key]) for key, _ in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def add_face_arguments(parser, crop_help=None):
    """--detector and --framing (and --crop when `crop_help` is given): the same face choices
    for every command that finds faces in pictures."""
    from gimefive_tf.faces import DEFAULT_DETECTOR, DETECTORS, FRAMINGS

    parser.add_argument("--detector", choices=DETECTORS, default=DEFAULT_DETECTOR,
                        help=f"face detector (default {DEFAULT_DETECTOR}: MediaPipe's BlazeFace; "
                             "mtcnn: slower; haar: OpenCV's cascade)")
    parser.add_argument("--framing", choices=FRAMINGS,
                        help="how a face is cut like the training faces: the calibrated box, "
                             "the eyes or all landmarks aligned to the training template "
                             "(default: the calibration's measured best)")
    if crop_help:
        from gimefive_tf.analyze import CROPS

        parser.add_argument("--crop", choices=CROPS, default="face", help=crop_help)
