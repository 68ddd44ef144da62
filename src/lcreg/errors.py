"""The exception type for bad user input, and the warning type for doubtful results.

The CLI turns an :class:`LcregError` into a single line on stderr and exit code 2, and an
:class:`LcregWarning` into one line ``lcreg: warning: ...``; any other exception is a bug
and keeps its traceback.
"""


def short(value: object, limit: int = 60) -> str:
    """A value for a message, never of unbounded size."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class LcregError(Exception):
    """A problem with the user's input (path, config key, data layout, image file)."""


class LcregWarning(RuntimeWarning):
    """Work goes on, but the user should know: a compile fallback, data that cannot give the
    asked imbalance, latent categories that collapsed to a position code."""
