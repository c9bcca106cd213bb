"""Supernet training (MCUNet's protocol): the largest subnet first, then the whole supernet.

Phase one trains the largest subnet alone (cross-entropy). Its middle channels are then sorted
by importance (supernet.sort_channels) so that every expand ratio keeps the best ones, and phase
two trains the supernet with the sandwich rule: each step runs the largest subnet (cross-entropy)
and `subnets` others, the smallest among them, each distilled from the largest's logits of the
same batch (knowledge distillation, weight `kd`, the rest cross-entropy). Every step draws one
resolution for all its subnets, so the supernet serves the whole resolution range. Given the
search's budget (cfg.budget), the other sampled subnets are drawn from those that fit it
(train_pool.py), so the shared weights are trained where the search will look.

Checkpoint and resume: the state is written (atomically) after every epoch. Every random draw of
an epoch comes from generators seeded by (seed, epoch, rank) and the learning rate is a function
of the step, so a run resumed from a checkpoint continues exactly as the uninterrupted run would
have: an interruption costs at most the current epoch. A checkpoint made with other settings is
refused rather than silently mixed. A checkpoint holds plain data only (tensors, numbers,
strings, lists and dicts) and is read with torch's weights_only unpickler, so a file from
elsewhere cannot run code when it is loaded.

Data-parallel training: under torchrun (or any initialised torch.distributed process group),
each process takes its share of every global batch and DistributedDataParallel averages the
gradients (gloo on CPU, nccl on GPU). All processes draw the same subnets and resolutions; only
rank 0 writes checkpoints.
"""

from __future__ import annotations

import math
import os
import pickle
import re
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from .arch import MAX_FIELD
from .data import Dataset, augment, batches, resize
from .errors import TinyNASError
from .flexnet import FlexSupernet
from .flexspace import FLEX_FORMAT, AnySpace, FlexSpace
from .space import SearchSpace
from .supernet import Supernet
from .train_pool import POOL, draw, fitting_pool

AnySupernet = Supernet | FlexSupernet


def build_supernet(space: AnySpace, width_mult: float) -> AnySupernet:
    """The supernet of either kind of space: MCUNet's MBConv space or the flexible one."""
    if isinstance(space, FlexSpace):
        return FlexSupernet(space, width_mult)
    return Supernet(space, width_mult)


def space_from_dict(d: Any, source: str) -> AnySpace:
    if isinstance(d, dict) and d.get("format") == FLEX_FORMAT:
        return FlexSpace.from_dict(d, source)
    return SearchSpace.from_dict(d, source)

CHECKPOINT = "supernet.pt"
_KEYS = {"config", "space", "model"}  # and, to resume from, epoch, optimizer, history


@dataclass(frozen=True)
class TrainConfig:
    width_mult: float
    resolutions: tuple[int, ...]
    largest_epochs: int = 30
    epochs: int = 40  # phase two
    batch: int = 64  # global batch (split across processes)
    lr: float = 1e-2
    weight_decay: float = 1e-4
    subnets: int = 2  # sampled per step besides the largest (the smallest is one of them)
    kd: float = 0.7  # weight of distillation against cross-entropy for sampled subnets
    augment: bool = True
    seed: int = 0
    # A Budget's fields: sampled subnets come from those that fit it (train_pool.py); None:
    # uniform over the space.
    budget: dict[str, Any] | None = None
    pool: int = POOL  # fitting subnets drawn per resolution for that (each a budget check)

    def __post_init__(self) -> None:
        if self.largest_epochs < 0 or self.epochs < 0 or self.largest_epochs + self.epochs == 0:
            raise TinyNASError("training needs at least one epoch (largest_epochs + epochs)")
        if self.batch < 1 or self.subnets < 0 or not 0 <= self.kd <= 1 or self.lr <= 0:
            raise TinyNASError("batch >= 1, subnets >= 0, 0 <= kd <= 1 and lr > 0 are required")
        if not self.resolutions or not all(
                isinstance(r, int) and not isinstance(r, bool) and 0 < r <= MAX_FIELD
                for r in self.resolutions):
            raise TinyNASError(f"training needs resolutions from 1 to {MAX_FIELD:,}, got "
                               f"{self.resolutions!r}")
        w = self.width_mult
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 < w <= MAX_FIELD:
            raise TinyNASError(f"width multiplier {w!r}: expected a positive number")

    @property
    def total_epochs(self) -> int:
        return self.largest_epochs + self.epochs

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["resolutions"] = list(self.resolutions)
        return d

    @staticmethod
    def from_dict(d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in fields(TrainConfig)}
        kw: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()
                              if k in names}
        return TrainConfig(**kw)


@dataclass
class EpochLog:
    epoch: int
    phase: str
    loss: float
    val_largest: float
    val_smallest: float
    lr: float


@dataclass
class TrainResult:
    supernet: AnySupernet
    config: TrainConfig
    history: list[EpochLog] = field(default_factory=list)
    resumed_from: int = 0  # epochs already done when this run started
    processes: int = 1
    replicas_identical: bool = True  # every process ended with the same weights (DDP check)


class _Step(nn.Module):
    """One forward over several subnets of the supernet: DistributedDataParallel wraps this, so
    a step is one forward and one backward whatever the sandwich holds."""

    def __init__(self, supernet: AnySupernet):
        super().__init__()
        self.supernet = supernet

    def forward(self, x: torch.Tensor, archs: list[Any]) -> list[torch.Tensor]:
        return [self.supernet(x, a) for a in archs]


def world() -> tuple[int, int]:
    """(rank, world size) of the torch.distributed group, (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed() -> bool:
    """Join the process group torchrun describes (WORLD_SIZE > 1 in the environment): gloo on
    CPU, nccl when CUDA is there. Returns whether this process is part of a group."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return True


@torch.no_grad()
def evaluate(model: Callable[[torch.Tensor], torch.Tensor], data: Dataset, r: int,
             batch: int = 512) -> tuple[float, float]:
    """(top-1 accuracy, mean cross-entropy) over `data` at resolution r."""
    correct, loss = 0, 0.0
    for x, y in batches(data, batch, r):
        logits = model(x)
        correct += int((logits.argmax(1) == y).sum())
        loss += float(F.cross_entropy(logits, y, reduction="sum"))
    return correct / len(data), loss / len(data)


def accuracy(model: Callable[[torch.Tensor], torch.Tensor], data: Dataset, r: int,
             batch: int = 512) -> float:
    return evaluate(model, data, r, batch)[0]


def progress_bar(enabled: bool, total: int, desc: str, unit: str, initial: int = 0) -> Any:
    """A tqdm bar, or None when progress output is off."""
    if not enabled:
        return None
    from tinyengine.progress import progress_bar as bar

    return bar(total=total, initial=initial, desc=desc, unit=unit)


def _lr(cfg: TrainConfig, epoch: int, step: int, steps: int) -> float:
    """Cosine decay within each phase, after one warm-up epoch at the start of phase one."""
    first = epoch < cfg.largest_epochs
    start, length = (0, cfg.largest_epochs) if first else (cfg.largest_epochs, cfg.epochs)
    t = (epoch - start + step / steps) / max(length, 1)
    scale = min(1.0, (epoch + step / steps) * 2) if first and epoch == 0 else 1.0
    return cfg.lr * scale * 0.5 * (1 + math.cos(math.pi * t))


def adamw(net: nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW with the fused implementation: one kernel over every parameter instead of a Python
    loop over them. The supernet has over a hundred small tensors (a module per kind per slot),
    and the per-tensor loop was 15% of a training step on the CPU; fused is about 7x faster."""
    return torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay, fused=True)


def _optimizer(net: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    return adamw(net, cfg.lr, cfg.weight_decay)


def _save(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # atomic: an interruption never leaves half a checkpoint


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's state, unpickled as data only (torch's weights_only unpickler: tensors,
    dicts, lists, tuples, numbers and strings). A checkpoint is a file a user may have been sent,
    and a full unpickler runs whatever code the file names; one that needs more than data is
    refused, naming what it asked for."""
    p = Path(path)
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise TinyNASError(f"{p}: no such checkpoint") from None
    except IsADirectoryError:
        raise TinyNASError(f"{p}: a directory, not a checkpoint (give DIR/{CHECKPOINT})") \
            from None
    except pickle.UnpicklingError as e:
        text = str(e)
        m = re.search(r"GLOBAL ([\w.]+)", text) or re.search(r"but got <class '([\w.]+)'>", text)
        if m is None and "Can only" not in text:  # a corrupt file, not a refused object
            raise TinyNASError(f"{p}: not a tinynas checkpoint (UnpicklingError)") from None
        what = f"the Python object {m.group(1)}" if m else "objects other than plain data"
        raise TinyNASError(f"{p}: refused: the checkpoint asks for {what}; tinynas loads only "
                           "tensors and plain data, since unpickling anything else can run code "
                           "(use a supernet.pt written by `tinynas train`)") from None
    except Exception as e:  # torch raises many kinds for a corrupt file
        raise TinyNASError(f"{p}: not a tinynas checkpoint ({type(e).__name__})") from None
    if not isinstance(state, dict) or not _KEYS <= set(state):
        raise TinyNASError(f"{p}: not a tinynas checkpoint (expected the keys "
                           f"{', '.join(sorted(_KEYS))})")
    return state


def supernet_from_checkpoint(path: str | Path) -> tuple[AnySupernet, TrainConfig, AnySpace]:
    state = load_checkpoint(path)
    try:
        space = space_from_dict(state["space"], f"{path}")
        cfg = TrainConfig.from_dict(state["config"])
        with torch.device("meta"):  # shapes only: nothing is allocated for a crafted space
            shapes = {k: v.shape for k, v in
                      build_supernet(space, cfg.width_mult).state_dict().items()}
        model = state["model"]
        if not isinstance(model, dict) or any(
                not isinstance(model.get(k), torch.Tensor) or model[k].shape != shape
                for k, shape in shapes.items()) or len(model) != len(shapes):
            raise TinyNASError("its weights do not match the supernet its settings describe")
        net = build_supernet(space, cfg.width_mult)
        net.load_state_dict(model)
    except TinyNASError as e:
        raise TinyNASError(f"{path}: a damaged tinynas checkpoint: {e}") from None
    except (KeyError, TypeError, ValueError, RuntimeError, OverflowError) as e:
        raise TinyNASError(f"{path}: a damaged tinynas checkpoint ({type(e).__name__}: "
                           f"{str(e).splitlines()[0] if str(e) else ''})") from None
    return net.eval(), cfg, space


def _check_resume(state: dict[str, Any], cfg: TrainConfig, space: AnySpace,
                  path: Path) -> None:
    old = state["config"] if isinstance(state["config"], dict) else {}
    # A setting a checkpoint predates was its default then.
    defaults = {f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING}
    diffs = [f"{k}: {old.get(k, defaults.get(k))!r} then, {v!r} now"
             for k, v in cfg.to_dict().items() if old.get(k, defaults.get(k)) != v]
    if state.get("space") != space.to_dict():
        diffs.append("the search space")
    if diffs:
        raise TinyNASError(f"{path} was written by a run with other settings ({'; '.join(diffs)})"
                           ": resume with the same settings, or use a fresh directory (or "
                           "--no-resume) to start over")


def _restore(state: dict[str, Any], net: AnySupernet, opt: torch.optim.Optimizer,
             cfg: TrainConfig, result: TrainResult, path: Path) -> int:
    """Load the weights, optimizer and history of a checkpoint that _check_resume accepted;
    returns the epochs done. Whatever is malformed is named, never a traceback."""
    try:
        start = state["epoch"]
        if isinstance(start, bool) or not isinstance(start, int) or \
                not 1 <= start <= cfg.total_epochs:
            raise ValueError(f"epoch {start!r} is not within 1..{cfg.total_epochs}")
        net.load_state_dict(state["model"])
        if start != cfg.largest_epochs:  # at the phase boundary the optimizer starts afresh
            opt.load_state_dict(state["optimizer"])
        history = [EpochLog(**h) for h in state["history"]]
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as e:
        raise TinyNASError(f"{path}: a damaged tinynas checkpoint ({type(e).__name__}: "
                           f"{str(e).splitlines()[0] if str(e) else ''})") from None
    result.history = history
    result.resumed_from = start
    return start


def train_supernet(space: AnySpace, data: Dataset, val: Dataset, cfg: TrainConfig,
                   out_dir: str | Path | None = None, resume: bool = True,
                   progress: bool = True, stop_after: int | None = None) -> TrainResult:
    """Train the supernet of `space` at `cfg.width_mult`; checkpoint to out_dir/supernet.pt.

    resume: continue from an existing checkpoint in out_dir (made with the same settings).
    stop_after: stop once this many epochs are done (as an interruption would; for tests and
    for splitting a long run).
    """
    rank, size = world()
    if cfg.batch < size:
        raise TinyNASError(f"batch {cfg.batch} is smaller than the {size} processes")
    torch.manual_seed(cfg.seed)  # initial weights: the same in every process
    net = build_supernet(space, cfg.width_mult)
    opt = _optimizer(net, cfg)
    result = TrainResult(net, cfg)
    ckpt = Path(out_dir) / CHECKPOINT if out_dir is not None else None
    start = 0
    if ckpt is not None and ckpt.exists():
        if not resume:
            raise TinyNASError(f"{ckpt} exists: resume it, or choose a fresh directory")
        state = load_checkpoint(ckpt)
        _check_resume(state, cfg, space, ckpt)
        start = _restore(state, net, opt, cfg, result, ckpt)
        if progress and rank == 0:
            print(f"resuming from {ckpt}: epoch {start} of {cfg.total_epochs} done", flush=True)
    step_net: nn.Module = _Step(net)
    if size > 1:
        step_net = nn.parallel.DistributedDataParallel(step_net, find_unused_parameters=True)
    end = cfg.total_epochs if stop_after is None else min(cfg.total_epochs, stop_after)
    pools: dict[int, list[Any]] = {}
    if cfg.budget is not None and cfg.subnets > 1 and end > cfg.largest_epochs:
        pools = fitting_pool(net, cfg.resolutions, cfg.budget, cfg.seed, cfg.pool)
    bar = progress_bar(progress and rank == 0, cfg.total_epochs, "supernet", "epoch", start)
    for epoch in range(start, end):
        if epoch == cfg.largest_epochs and epoch > 0:
            net.sort_channels()
            opt = _optimizer(net, cfg)
        log = _epoch(step_net, net, opt, data, val, cfg, epoch, rank, size, pools)
        result.history.append(log)
        if ckpt is not None and rank == 0:
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            _save(ckpt, {"config": cfg.to_dict(), "space": space.to_dict(), "epoch": epoch + 1,
                         "model": net.state_dict(), "optimizer": opt.state_dict(),
                         "history": [asdict(h) for h in result.history]})
        if size > 1:
            dist.barrier()
        if bar is not None:
            bar.update(1)
            bar.set_postfix(phase=log.phase, loss=f"{log.loss:.3f}",
                            largest=f"{log.val_largest:.3f}", smallest=f"{log.val_smallest:.3f}")
    if bar is not None:
        bar.close()
    result.processes = size
    if size > 1:
        result.replicas_identical = _replicas_identical(net)
    if end == cfg.total_epochs and cfg.epochs == 0 and cfg.largest_epochs > 0:
        net.sort_channels()  # a supernet is always handed out sorted
    net.eval()
    return result


def _replicas_identical(net: nn.Module) -> bool:
    """Whether every process holds the same weights: the invariant DDP must keep."""
    flat = torch.cat([p.detach().flatten() for p in net.parameters()]).double()
    probe = torch.stack([flat.sum(), (flat * torch.linspace(1, 2, len(flat),
                                                             dtype=torch.float64)).sum()])
    hi, lo = probe.clone(), probe.clone()
    dist.all_reduce(hi, dist.ReduceOp.MAX)
    dist.all_reduce(lo, dist.ReduceOp.MIN)
    return bool(torch.equal(hi, lo))


def _epoch(step_net: nn.Module, net: AnySupernet, opt: torch.optim.Optimizer, data: Dataset,
           val: Dataset, cfg: TrainConfig, epoch: int, rank: int, size: int,
           pools: dict[int, list[Any]]) -> EpochLog:
    phase = "largest" if epoch < cfg.largest_epochs else "supernet"
    arch_rng = np.random.default_rng([cfg.seed, epoch])  # same in every process
    shuffle = torch.Generator().manual_seed(cfg.seed * 100003 + epoch)
    aug_gen = torch.Generator().manual_seed((cfg.seed * 100003 + epoch) * 64 + rank)
    native = data.native_resolution
    parts = batches(data, cfg.batch, native, shuffle, shard=(rank, size))
    step_net.train()
    for p in net.parameters():  # a parameter unused so far must still be stepped (with a zero
        if p.grad is None:      # gradient), or a resumed run would diverge from an unbroken one
            p.grad = torch.zeros_like(p)
    total, count, lr = 0.0, 0, cfg.lr
    for i, (x, y) in enumerate(parts):
        lr = _lr(cfg, epoch, i, len(parts))
        for g in opt.param_groups:
            g["lr"] = lr
        r = int(cfg.resolutions[arch_rng.integers(len(cfg.resolutions))])
        largest = net.largest(r)
        archs = [largest]
        if phase == "supernet" and cfg.subnets:
            archs.append(net.space.extreme(cfg.width_mult, r, largest=False))
            archs += [draw(pools, net, arch_rng, r) for _ in range(cfg.subnets - 1)]
        xb = augment(x, r, aug_gen) if cfg.augment else resize(x, r)
        outs = step_net(xb, archs)
        loss = F.cross_entropy(outs[0], y)
        teacher = F.softmax(outs[0].detach(), 1)
        for out in outs[1:]:
            kd = F.kl_div(F.log_softmax(out, 1), teacher, reduction="batchmean")
            loss = loss + cfg.kd * kd + (1 - cfg.kd) * F.cross_entropy(out, y)
        opt.zero_grad(set_to_none=False)  # DDP expects a gradient for every parameter
        loss.backward()
        opt.step()
        total += loss.item() * len(y)
        count += len(y)
    if size > 1:  # the logged loss is over the global batch, as one process would see it
        sums = torch.tensor([total, float(count)], dtype=torch.float64)
        dist.all_reduce(sums)
        total, count = float(sums[0]), int(sums[1])
    net.eval()
    r_top = max(cfg.resolutions)
    return EpochLog(epoch, phase, total / max(count, 1),
                    accuracy(lambda x: net(x, net.largest(r_top)), val, r_top),
                    accuracy(lambda x: net(x, net.space.extreme(cfg.width_mult, r_top, False)),
                             val, r_top), lr)
