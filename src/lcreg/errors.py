"""The one exception type for bad user input.

The CLI turns an :class:`LcregError` into a single line on stderr and exit code 2; any
other exception is a bug and keeps its traceback.
"""


class LcregError(Exception):
    """A problem with the user's input (path, config key, data layout, image file)."""
