"""The one exception type for mistakes a user can fix (bad config, bad path, bad value)."""


class GiMeFiveError(ValueError):
    """A user-facing error: its message says what is wrong and how to fix it.

    Command-line entry points print it as ``error: <message>`` and exit with status 2.
    """
