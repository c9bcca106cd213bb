"""The one exception type for errors a user can cause.

The CLI prints these on one line and exits with status 2; anything else is our bug and keeps its
traceback.
"""


class TinyEngineError(Exception):
    """Bad input: a file we cannot read, an op we do not support, a directory we cannot write."""


class UnsupportedError(TinyEngineError):
    """The model is valid but uses something the engine does not implement."""
