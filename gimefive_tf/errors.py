"""The one exception type for mistakes a user can fix (bad config, bad path, bad value)."""


class GiMeFiveError(ValueError):
    """A user-facing error: its message says what is wrong and how to fix it.

    Command-line entry points print it as ``error: <message>`` and exit with status 2.
    """


def first_line(error):
    """An exception's message cut to its first line (its type's name when it has none): the
    part of a library's error worth one `error:` line; never itself an IndexError."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def yaml_problem(error):
    """A yaml.YAMLError as one line: where (line, column) and what, without PyYAML's
    multi-line excerpt of the file."""
    where = getattr(error, "problem_mark", None)
    line = f" (line {where.line + 1}, column {where.column + 1})" if where else ""
    return f"not valid YAML{line}: {getattr(error, 'problem', None) or error}"
