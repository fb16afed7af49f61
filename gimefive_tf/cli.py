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
