"""tinyengine: compile int8 models into standalone, malloc-free C projects for microcontrollers."""

__version__ = "0.1.0"
