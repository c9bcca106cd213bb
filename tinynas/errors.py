"""The one exception type for errors a tinynas user can cause.

It derives from tinyengine's, so a program that drives both halves catches one type; the CLI
prints it on one line (`tinynas: error: ...`) and exits with status 2.
"""

from tinyengine.errors import TinyEngineError


class TinyNASError(TinyEngineError):
    """Bad input to the search: a malformed architecture, a budget nothing fits, a bad option."""
