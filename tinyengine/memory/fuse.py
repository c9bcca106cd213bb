"""Inverted-residual blocks run band by band: find expand -> depthwise -> project (-> add)
chains and replace each by one FUSED_BLOCK op (tinyengine/ops/fused_block.py).

Unfused, such a block holds its whole expanded tensor: mcunet-in3's 44x44 blocks (16 -> 80
channels) keep 154,880 B of it live beside their 30,976-byte input, beyond any patch stage. Fused,
the expansion exists only as a window of depthwise-kernel rows (3 x 44 x 80 = 10,560 B there), so
the block needs its input, its output (or neither extra: the output may overwrite the input) and
that window. The price is speed: the window's rows are shifted by a copy per output row, and
every member kernel is called once per row. schedule.py therefore fuses only where the arena
gets smaller.

A chain qualifies when its ops are consecutive in the execution order, each intermediate tensor
is read by the next member alone and is no graph output, and the members are in
te_fused_block_s8's domain (fused_block.chain_problem).
"""

from __future__ import annotations

from collections.abc import Collection

from ..ir import Graph, Op
from ..ops.fused_block import chain_problem


def fusable_blocks(graph: Graph) -> list[list[Op]]:
    """The chains that can run as one FUSED_BLOCK, in execution order, none sharing an op."""
    readers: dict[str, list[Op]] = {}
    for op in graph.ops:
        for n in op.inputs:
            if n:
                readers.setdefault(n, []).append(op)
    outputs = set(graph.outputs)

    def only_reader(op: Op, kind: str) -> Op | None:
        out = op.outputs[0]
        r = readers.get(out, [])
        if len(op.outputs) != 1 or out in outputs or len(r) != 1 or r[0].kind != kind:
            return None
        return r[0]

    blocks: list[list[Op]] = []
    position = {op.name: i for i, op in enumerate(graph.ops)}
    i = 0
    while i < len(graph.ops):
        expand = graph.ops[i]
        i += 1
        if expand.kind != "CONV_2D" or expand.attrs.get("origin") is not None:
            continue  # a patch's op keeps its own window geometry
        dw = only_reader(expand, "DEPTHWISE_CONV_2D")
        project = only_reader(dw, "CONV_2D") if dw is not None else None
        if dw is None or project is None:
            continue
        chain = [expand, dw, project]
        add = only_reader(project, "ADD")
        if add is not None and expand.inputs[0] in add.inputs:
            chain.append(add)
        else:
            add = None
        if [position[o.name] for o in chain] != list(range(i - 1, i - 1 + len(chain))):
            continue
        if chain_problem(graph, expand, dw, project, add) is None:
            blocks.append(chain)
            i += len(chain) - 1
    return blocks


def block_name(chain: list[Op]) -> str:
    """The fused op's name: its members' names, so that a report's peak step names them."""
    return "+".join(op.name for op in chain)


def fuse_blocks(graph: Graph, names: bool | Collection[str] = True) -> Graph:
    """`graph` with each fusable chain whose block_name is in `names` (True: every one, False:
    none) replaced by one FUSED_BLOCK op at the chain's place; `graph` itself when none is."""
    chains = [c for c in fusable_blocks(graph)
              if names is True or (names is not False and block_name(c) in names)]
    if not chains:
        return graph
    first = {c[0].name: c for c in chains}
    fused_away = {op.name for c in chains for op in c}
    tensors = dict(graph.tensors)
    ops: list[Op] = []
    for op in graph.ops:
        chain = first.get(op.name)
        if chain is not None:
            ops.append(_fused_op(chain, tensors))
        elif op.name not in fused_away:
            ops.append(op)
    return Graph(tensors, ops, graph.inputs, graph.outputs, graph.name)


def _fused_op(chain: list[Op], tensors: dict) -> Op:
    """The FUSED_BLOCK of `chain`; its intermediate tensors move from `tensors` into its attrs."""
    expand, dw, project = chain[:3]
    inner = {n: tensors.pop(n) for n in (o.outputs[0] for o in chain[:-1])}
    inputs = [expand.inputs[0]] + [n for m in (expand, dw, project)
                                   for n in (list(m.inputs[1:3]) + [""])[:2]]
    return Op(block_name(chain), "FUSED_BLOCK", inputs, [chain[-1].outputs[0]],
              {"block": list(chain), "inner": inner})
