"""tinynas: find the most accurate network that fits a microcontroller (MCUNet's TinyNAS).

The layout is the pipeline:
    arch.py       an architecture description (plain data, JSON)
    space.py      search spaces and their presets (imagenet, vww, digits); sampling, mutation
    layers.py, subnet.py   a standalone PyTorch network for an architecture
    supernet.py   the once-for-all supernet: elastic kernel, expand ratio, depth; extraction
    resources.py  architecture -> the engine's IR -> tinyengine.cost.estimate
    budget.py     the same figures, fast, and the fits-the-budget test stage one asks
    stage1.py     search-space optimisation: choose width multiplier and resolution
    stage1_report.py, cli.py   tables, plots, the `tinynas` command
    zoo.py        MCUNet's released models as descriptions
    data.py       datasets (digits, CIFAR-10, ImageFolder), splits, augmentation
    train.py      supernet training: largest first, then the sandwich with distillation;
                  checkpoints, exact resume, DDP
    evolve.py     stage two: evolution under the budget, and random search with the same budget
    finish.py     fine-tune, quantise, compile, run the C over the test split
    pipeline.py, commands.py, search_report.py   the one-command pipeline, CLI, plots
"""

__version__ = "0.1.0"
