"""The int8 scheme of a streaming step, shared by the export's PTQ (``export.targets``) and QAT of
the step (``train.quant.stream_qat``): XNNPACK's per-channel symmetric int8, with the state's
recurrences left float and each ``cat`` quantized as one tensor (:func:`step_quantizer`)."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def xnnpack_quantizer(qat: bool = False):
    """The int8 scheme of the .pte target (and the one QAT should train with)."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )

    return XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True, is_qat=qat))


# what a state buffer may go through on its way from its input to its output and still be a shift
# register (history frames moved along, int8 exact); anything else is arithmetic on the state
_STATE_MOVES = {"cat", "slice", "view", "reshape", "permute", "clone", "alias", "contiguous", "expand"}


def _recurrences(edges: dict, inputs: Sequence, outputs: Sequence, is_move) -> set:
    """The nodes that compute a new state from its old value by arithmetic (an average carried
    across calls), over a graph given as ``edges`` (node -> its consumers): for each state input and
    its output, the nodes on paths between them, kept when any of them is not a mere move."""
    parents: dict = {}
    for a, users in edges.items():
        for b in users:
            parents.setdefault(b, []).append(a)

    def reach(start, step) -> set:
        seen, todo = set(), [start]
        while todo:
            for n in step(todo.pop()):
                if n not in seen:
                    seen.add(n)
                    todo.append(n)
        return seen

    found = set()
    for state, new in zip(inputs, outputs):
        path = reach(state, lambda n: edges.get(n, ())) & (reach(new, lambda n: parents.get(n, ())) | {new})
        if any(not is_move(n) for n in path):
            found |= path
    return found


def step_quantizer(quantizer):
    """``quantizer`` for a streaming step's graph (inputs: the packet, then the state buffers; outputs:
    the logits, then the new buffers in the same order), with two changes to its annotation:

    - state recurrences stay float: the ops that compute a new state from the old one by arithmetic
      (the band norm's running mean and its weight, ``s = a s + (1 - a) x``) are left unannotated. An
      average carried in int8 moves only when its update exceeds half a quantization step: with
      ``1 - a`` about 5 % per packet it can stall some tenths of a log-mel unit away from the true
      mean, a bias every later layer sees (a partly trained streamtcn's mean logit error on the
      sample run fell from 1.1 to 0.05 with them in float). They are a few ops on 64 values per
      packet. A shift register (a conv's last frames: ``cat`` and ``slice``) is exact in int8 and
      stays quantized;
    - every ``cat`` left unannotated is annotated as one tensor: its inputs and output share one set
      of qparams, owned by the first input that comes out of an annotated op (as XNNPACK's quantizer
      does). litert-torch finds a cat by the graph's ``source_fn_stack``, which a non-strict export
      does not record, so ``cat(state, new frames)`` stayed float between quantized ops; its converter
      then met two scales a float32 rounding apart on one tensor and stopped ("quantization
      parameters violate the same scale constraint"). Shared, the state buffers (slices of it) are int8.
    """
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation, Quantizer, SharedQuantizationSpec

    spec = quantizer.global_config.input_activation
    key = "quantization_annotation"

    def annotated(node: torch.fx.Node) -> bool:
        ann = node.meta.get(key)
        return ann is not None and ann._annotated

    def share_cats(model: torch.fx.GraphModule) -> None:
        for node in model.graph.nodes:
            if node.op != "call_function" or node.target != torch.ops.aten.cat.default or annotated(node):
                continue
            inputs = [a for a in node.args[0] if isinstance(a, torch.fx.Node)]
            if not inputs:
                continue
            owner = next((a for a in inputs if annotated(a) and a.meta[key].output_qspec is not None), inputs[0])
            shared = SharedQuantizationSpec((owner, node))
            node.meta[key] = QuantizationAnnotation(
                input_qspec_map={a: spec if a is owner else shared for a in inputs}, output_qspec=shared, _annotated=True
            )

    def float_recurrences(model: torch.fx.GraphModule) -> None:
        graph = model.graph
        placeholders = [n for n in graph.nodes if n.op == "placeholder"]
        output = next(n for n in graph.nodes if n.op == "output")
        results = [n for n in torch.utils._pytree.tree_leaves(output.args[0]) if isinstance(n, torch.fx.Node)]
        edges = {n: list(n.users) for n in graph.nodes}

        def is_move(n: torch.fx.Node) -> bool:
            return n.op != "call_function" or getattr(n.target, "__name__", "").split(".")[0] in _STATE_MOVES

        dropped = _recurrences(edges, placeholders[1:], results[1:], is_move)
        for n in dropped:
            n.meta.pop(key, None)

        def refers_to_dropped(q) -> bool:  # a spec sharing the qparams of a node or edge left float
            if not isinstance(q, SharedQuantizationSpec):
                return False
            ref = q.edge_or_node
            return any(r in dropped for r in (ref if isinstance(ref, tuple) else (ref,)))

        changed = True
        while changed:  # whatever shares qparams with a float tensor goes float too
            changed = False
            for n in graph.nodes:
                ann = n.meta.get(key)
                if ann is not None and (refers_to_dropped(ann.output_qspec) or any(map(refers_to_dropped, ann.input_qspec_map.values()))):
                    n.meta.pop(key)
                    dropped.add(n)
                    changed = True

    class StepQuantizer(Quantizer):
        def transform_for_annotation(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
            return quantizer.transform_for_annotation(model)

        def annotate(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
            model = quantizer.annotate(model)
            share_cats(model)
            float_recurrences(model)
            return model

        def validate(self, model: torch.fx.GraphModule) -> None:
            quantizer.validate(model)

    return StepQuantizer()
