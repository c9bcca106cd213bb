"""tinynas: search for the most accurate network that fits a microcontroller (in progress)."""

__version__ = "0.1.0"
