"""Hooks that watch a training run from inside its process and turn each step into a StepRecord.

Only public torch extension points are used: the global optimizer step hooks, the global module forward
(pre-)hooks, and wrappers around the clipping functions, the backward entry points, torch.autograd.grad,
torch.func.grad(_and_value) and GradScaler's scale/unscale_/step. Global *backward* module hooks are deliberately
not used: they wrap module outputs in autograd functions that break models with in-place operations.

Cost matters (the probe must stay under 5% of step time), so per optimizer step the recorder launches a few
reductions (the norms of all gradients and parameters; one sum per leaf-module output for the NaN/Inf check)
and reads them back with a single .tolist(): one device sync per step. Those norms are computed in the tensors'
own dtype, which overflows for huge finite values (squares above float32's range, float16 norms above 65504);
the few that come back non-finite are measured again exactly, so the fast path stays fast and every finite
gradient still gets its true norm.
"""
from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

import torch

from gradlint.probe.records import RecurrentRecord, StepRecord

# U is measured on a contiguous prefix of each parameter: copying every weight before each step would cost
# as much as the optimizer itself, and a prefix of this size estimates the ratio well.
UPDATE_SAMPLE = 1 << 14
# A step moves the parameters' norm by at most its update (| |p'| - |p| | <= |p' - p|), and the verdict reads
# that norm as a trend over a window, while measuring it is a pass over every weight (a fifth of the probe's
# cost per step on a CPU). So it is measured on the first step, on every PARAM_NORM_EVERY-th, on the last one
# the budget allows, and on every step after one whose update was not quiet (U >= QUIET_UPDATE, or not
# measured, or anything non-finite); the steps between record none.
PARAM_NORM_EVERY = 4
QUIET_UPDATE = 0.01
# Forward checks queued with no step to resolve them (inference loops) are resolved in batches of this size.
MAX_PENDING_CHECKS = 4096
# Layers whose output is finite wherever their input is: a non-finite output of theirs was already seen at
# the layer before, so checking them costs a reduction a step (a third of an MLP's checks) and tells nothing.
FINITE_PRESERVING = (
    torch.nn.ReLU, torch.nn.ReLU6, torch.nn.LeakyReLU, torch.nn.Tanh, torch.nn.Sigmoid, torch.nn.Hardtanh,
    torch.nn.GELU, torch.nn.SiLU, torch.nn.Dropout, torch.nn.Dropout1d, torch.nn.Dropout2d, torch.nn.Dropout3d,
    torch.nn.Identity, torch.nn.Flatten, torch.nn.Unflatten,
)

Emit = Callable[[dict[str, Any]], None]


def _tensors_in(value: Any) -> list[torch.Tensor]:
    """Floating-point tensors in a module's input or output (tuples, lists and dicts, as LSTMs return)."""
    if isinstance(value, torch.Tensor):
        return [value] if value.is_floating_point() else []
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in _tensors_in(item)]
    if isinstance(value, dict):
        return [t for item in value.values() for t in _tensors_in(item)]
    return []


def _finite_probe(tensor: torch.Tensor) -> torch.Tensor:
    """A 0-d tensor that is non-finite if some element is, with no sync: the plain sum, the cheapest reduction.

    (The max-norm would be exact but is many times slower on CPU; summing in float64 too.) A sum of huge
    finite values can overflow and flag a module early, but only where outputs reach ~1e38, which is where an
    overflow to inf starts anyway. 16-bit tensors are summed in float32 so that ordinary values cannot overflow.
    """
    tensor = tensor.detach()
    return tensor.sum(dtype=torch.float32) if tensor.element_size() < 4 else tensor.sum()


def _local(tensor: torch.Tensor) -> torch.Tensor:
    """A DTensor's shard on this rank (FSDP2): each rank measures its own, and the probe's parent combines them."""
    to_local = getattr(tensor, "to_local", None)
    return to_local() if to_local is not None else tensor


def _values(grad: torch.Tensor) -> torch.Tensor:
    """The values a gradient holds: a sparse gradient's (coalesced, so repeated indices are summed first)."""
    grad = _local(grad)
    if grad.is_sparse:
        return grad.coalesce().values()
    if grad.layout != torch.strided:  # CSR and the other compressed layouts
        return grad.to_dense()
    return grad


def exact_norm(tensor: torch.Tensor) -> float:
    """The L2 norm in float64, divided by the largest magnitude first so that no square overflows."""
    values = _values(tensor.detach()).to("cpu")
    values = values.to(torch.complex128).abs() if values.is_complex() else values.to(torch.float64).abs()
    if values.numel() == 0:
        return 0.0
    peak = float(values.max())
    if peak == 0 or not math.isfinite(peak):
        return peak  # all zero, or a NaN/Inf that is really there
    return peak * float(torch.linalg.vector_norm(values / peak))


def _exact_norms(norms: list[float], tensors: list[torch.Tensor | None]) -> list[float]:
    """The norms, with each non-finite one measured again exactly where its tensor is still as it was."""
    if all(math.isfinite(v) for v in norms):
        return norms
    return [v if math.isfinite(v) or t is None else exact_norm(t) for v, t in zip(norms, tensors)]


_DOT_DTYPES = (torch.float32, torch.float64)


def _norms(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """L2 norms as 0-d tensors, launched with no sync.

    On the CPU, where torch._foreach_norm has no fused kernel and loops over the tensors anyway, a BLAS dot
    product per tensor takes two thirds of the time of torch's norm kernel and is no less exact. Elsewhere the
    fused kernel is the fast one.
    """
    if tensors and all(t.device.type == "cpu" and t.dtype in _DOT_DTYPES for t in tensors):
        squares = [torch.dot(flat, flat) for flat in (t.reshape(-1) for t in tensors)]
        return list(torch.stack(squares).sqrt_().unbind())
    return list(torch._foreach_norm(tensors))


_PLAIN = (torch.Tensor, torch.nn.Parameter)


def _sample_of(param: torch.Tensor) -> torch.Tensor:
    """The first UPDATE_SAMPLE values of a parameter (this rank's shard of a DTensor): a view where it is contiguous."""
    return _local(param.detach()).reshape(-1)[:UPDATE_SAMPLE]


def _read(values: list[torch.Tensor]) -> list[float]:
    """0-d tensors as floats: one stack (which promotes mixed dtypes) and one sync per device."""
    try:
        return torch.stack(values).tolist()
    except RuntimeError:  # tensors on several devices
        floats = [0.0] * len(values)
        by_device: dict[torch.device, list[int]] = {}
        for i, value in enumerate(values):
            by_device.setdefault(value.device, []).append(i)
        for indices in by_device.values():
            for i, value in zip(indices, torch.stack([values[i] for i in indices]).tolist()):
                floats[i] = value
        return floats


def _graph_leaves(output: torch.Tensor) -> list[torch.Tensor]:
    """The tensors a backward from output accumulates into: the variables of its graph's AccumulateGrad nodes."""
    leaves = []
    seen = set()
    stack = [output.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        variable = getattr(node, "variable", None)
        if isinstance(variable, torch.Tensor):
            leaves.append(variable)
        else:
            stack.extend(child for child, _ in node.next_functions)
    leaves.reverse()  # the depth-first walk from the loss meets the last layers first
    return leaves


def _recurrent_blocks(module: torch.nn.RNNBase) -> list[tuple[str, torch.Tensor, float]]:
    """(parameter name, hidden-to-hidden matrix, derivative bound of its activation) for an RNN/LSTM/GRU.

    For LSTM and GRU the candidate block (tanh, derivative <= 1) is the path a plain recurrence would take;
    the gates only shrink it, so its radius bounds theirs.
    """
    blocks = []
    hidden = module.hidden_size
    for name, weight in module.named_parameters(recurse=False):
        if not name.startswith("weight_hh"):
            continue
        if module.mode in ("LSTM", "GRU"):
            weight = weight[2 * hidden : 3 * hidden]
        blocks.append((name, weight, 1.0))  # tanh' <= 1, relu' <= 1
    return blocks


def _wraps(wrapper: Callable[..., Any], original: Callable[..., Any]) -> Callable[..., Any]:
    wrapper.__wrapped__ = original  # type: ignore[attr-defined]
    wrapper.__name__ = getattr(original, "__name__", wrapper.__name__)
    wrapper.__doc__ = original.__doc__
    return wrapper


class Recorder:
    """Collects step records for one process. `install()` hooks torch; `finish()` flushes the last step.

    emit receives each record as a JSON-ready dict. stop, when given, is called after the step budget is spent
    or a non-finite value was recorded; it is expected to raise and end the script.
    """

    def __init__(
        self,
        emit: Emit,
        *,
        max_steps: int | None = None,
        stop: Callable[[], None] | None = None,
        roots: Iterable[torch.nn.Module] | None = None,
        optimizers: Iterable[torch.optim.Optimizer] | None = None,
    ) -> None:
        self._emit = emit
        self._max_steps = max_steps
        self._stop = stop
        self._pid = os.getpid()
        self._fixed_roots = roots is not None
        self._roots: dict[int, torch.nn.Module] = {id(m): m for m in roots or ()}
        self._optimizers = {id(o) for o in optimizers} if optimizers is not None else None
        self._names: dict[int, str] = {}
        self._names_for = -1  # number of roots the name map was built from
        self._owner: dict[int, int] = {}  # parameter id -> id of the module that holds it
        self._forward_order: dict[int, int] = {}  # module id -> rank of its first call: "first layers" come first
        self._depth = 0
        self._leaf: dict[int, bool] = {}
        self._checking = True
        self._checks: list[tuple[str, torch.nn.Module, torch.Tensor]] = []
        # The output checked last, and its version then: a container (nn.Sequential) passes its last child's
        # output on as its own, unchanged unless written in place since.
        self._last_checked: tuple[torch.Tensor, int] | None = None
        self._origin: str | None = None
        self._recurrent: dict[int, torch.nn.RNNBase] = {}
        self._recurrent_start: list[tuple[torch.nn.RNNBase, str, float, float]] = []
        self._in_backward = False
        self._in_functional = False
        self._loss: torch.Tensor | None = None
        self._leaves: list[torch.Tensor] | None = None  # what the current backward trains, before any optimizer
        self._clip_norms: dict[int, float] = {}
        self._clip_threshold: float | None = None
        self._clip_scaled = False
        self._scaled: tuple[torch.Tensor, torch.Tensor, Any] | None = None  # (loss x scale, loss, the GradScaler)
        self._scaled_backward = False  # the last backward ran on a scaled loss...
        self._unscaled = False  # ...and scaler.unscale_ has run since
        self._scaler: Any = None
        self._skipped_scales: list[float] = []
        self._optimizer_seen = False
        self._optimizer_steps = 0
        self._labels: dict[int, str] = {}
        self._step_state: dict[str, Any] | None = None
        self._pending_manual: dict[str, Any] | None = None
        # Per optimizer (None: hand-written updates): the gradients its last step used, until seen cleared.
        self._grad_marks: dict[str | None, list[tuple[torch.Tensor, int, int]]] = {}
        self._cleared: dict[str | None, bool] = {}
        # Per optimizer: its parameters' ids and addresses, their sample views (None where those are copies), and
        # the buffers the samples are copied into.
        self._buffers: dict[str, tuple[list[int], list[int] | None, list[torch.Tensor] | None, list[torch.Tensor]]] = {}
        self._leaf_names: dict[int, str] = {}
        self._handles: list[Any] = []
        self._patched: list[tuple[Any, str, Any]] = []
        self._quiet_steps = 0  # steps since the parameter norms were last measured, each with a quiet update
        self.steps = 0
        self.forward_calls = 0
        self.backward_calls = 0

    # ----- installing -------------------------------------------------------------------------------
    def install(self) -> None:
        from torch.nn.modules import module as module_hooks
        from torch.optim import optimizer as optimizer_hooks

        self._handles = [
            module_hooks.register_module_forward_pre_hook(self._on_forward_pre),
            module_hooks.register_module_forward_hook(self._on_forward, always_call=True),
            optimizer_hooks.register_optimizer_step_pre_hook(self._on_step_pre),
            optimizer_hooks.register_optimizer_step_post_hook(self._on_step_post),
        ]
        import torch.func
        import torch.nn.utils
        import torch.nn.utils.clip_grad
        from torch.amp import GradScaler

        for owner in (torch.nn.utils, torch.nn.utils.clip_grad):
            self._patch(owner, "clip_grad_norm_", self._wrap_clip(owner.clip_grad_norm_))
            self._patch(owner, "clip_grad_value_", self._wrap_clip(owner.clip_grad_value_))
        self._patch(torch.nn.utils, "clip_grads_with_norm_", self._wrap_clip(torch.nn.utils.clip_grads_with_norm_))
        self._patch(torch.Tensor, "backward", self._wrap_backward(torch.Tensor.backward))
        self._patch(torch.autograd, "backward", self._wrap_backward(torch.autograd.backward))
        self._patch(torch.autograd, "grad", self._wrap_autograd_grad(torch.autograd.grad))
        self._patch(torch.func, "grad", self._wrap_functional(torch.func.grad, with_value=False))
        self._patch(torch.func, "grad_and_value", self._wrap_functional(torch.func.grad_and_value, with_value=True))
        self._patch(GradScaler, "scale", self._wrap_scale(GradScaler.scale))
        self._patch(GradScaler, "unscale_", self._wrap_unscale(GradScaler.unscale_))
        self._patch(GradScaler, "step", self._wrap_scaler_step(GradScaler.step))

    def uninstall(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        for owner, name, original in reversed(self._patched):
            setattr(owner, name, original)
        self._patched = []

    def _patch(self, owner: Any, name: str, replacement: Any) -> None:
        self._patched.append((owner, name, getattr(owner, name)))
        setattr(owner, name, replacement)

    def _mine(self) -> bool:
        # DataLoader workers are forks of this process: they inherit the hooks but must stay silent.
        return os.getpid() == self._pid

    def _watched(self, optimizer: torch.optim.Optimizer) -> bool:
        return self._optimizers is None or id(optimizer) in self._optimizers

    # ----- forward: roots, names, NaN/Inf origin, recurrent weights ---------------------------------
    def _on_forward_pre(self, module: torch.nn.Module, args: tuple) -> None:
        if not self._mine():
            return
        if id(module) not in self._forward_order:
            self._forward_order[id(module)] = len(self._forward_order)
        if self._depth == 0:
            self.forward_calls += 1
            if not self._fixed_roots and id(module) not in self._roots:
                self._roots[id(module)] = module
            if self._checking:
                self._checks.extend(("input", module, _finite_probe(t)) for t in _tensors_in(args))
        self._depth += 1
        if isinstance(module, torch.nn.RNNBase) and id(module) not in self._recurrent:
            self._recurrent[id(module)] = module
            with torch.no_grad():
                for name, weight, bound in _recurrent_blocks(module):
                    sigma = float(torch.linalg.matrix_norm(weight.detach().float(), ord=2))
                    self._recurrent_start.append((module, name, sigma, bound))

    def _on_forward(self, module: torch.nn.Module, args: tuple, output: Any) -> None:
        if not self._mine():
            return
        self._depth = max(0, self._depth - 1)
        if not self._checking:
            return
        leaf = self._leaf.get(id(module))
        if leaf is None:
            leaf = self._leaf[id(module)] = next(module.children(), None) is None and not isinstance(
                module, FINITE_PRESERVING
            )
        # Containers mostly pass their last child's output on: checking leaves (and roots) is enough.
        if leaf or self._depth == 0:
            for tensor in _tensors_in(output):
                # Inference tensors keep no version: those are always checked.
                version = -1 if tensor.is_inference() else tensor._version
                last = self._last_checked
                if version < 0 or last is None or tensor is not last[0] or version != last[1]:
                    self._checks.append(("output", module, _finite_probe(tensor)))
                    self._last_checked = (tensor, version)
        if len(self._checks) > MAX_PENDING_CHECKS:
            self._resolve_checks(_read([c[2] for c in self._checks]))

    def _resolve_checks(self, values: list[float]) -> None:
        self._last_checked = None
        for (kind, module, _), value in zip(self._checks, values):
            if not math.isfinite(value):
                self._origin = "input" if kind == "input" else self._module_name(module)
                self._checking = False  # the first non-finite value is the one that matters
                break
        self._checks = []

    def _refresh_names(self) -> None:
        if self._names_for == len(self._roots):
            return
        names: dict[int, str] = {}
        owner: dict[int, int] = {}
        used: dict[str, int] = {}
        for root in self._roots.values():
            label = type(root).__name__
            used[label] = used.get(label, 0) + 1
            if used[label] > 1:
                label = f"{label}#{used[label]}"
            for module_name, module in root.named_modules():
                names.setdefault(id(module), f"{label}.{module_name}" if module_name else label)
                for param in module.parameters(recurse=False):
                    owner.setdefault(id(param), id(module))
            for param_name, param in root.named_parameters():
                names.setdefault(id(param), f"{label}.{param_name}")
        self._names = names
        self._owner = owner
        self._names_for = len(self._roots)

    def _module_name(self, module: torch.nn.Module) -> str:
        self._refresh_names()
        return self._names.get(id(module), type(module).__name__)

    def _param_names(self, params: list[torch.Tensor]) -> list[str]:
        self._refresh_names()
        return [self._names.get(id(p)) or self._leaf_name(p) for p in params]

    def _leaf_name(self, tensor: torch.Tensor) -> str:
        """A tensor trained outside any module: its name among the script's globals, else a numbered one."""
        name = self._leaf_names.get(id(tensor))
        if name is None:
            script = vars(sys.modules.get("__main__", sys))
            found = next((key for key, value in script.items() if value is tensor), None)
            name = found or f"tensor{len(self._leaf_names)}({'x'.join(map(str, tensor.shape))})"
            self._leaf_names[id(tensor)] = name
        return name

    def _forward_rank(self, param: torch.Tensor) -> int:
        """Where the module holding param first ran; tensors outside modules go last, in the order given."""
        return self._forward_order.get(self._owner.get(id(param), -1), len(self._forward_order))

    # ----- clipping ---------------------------------------------------------------------------------
    def _wrap_clip(self, original: Callable[..., Any]) -> Callable[..., Any]:
        recorder = self

        def clip(parameters: Any, *args: Any, **kwargs: Any) -> Any:
            if not recorder._mine():
                return original(parameters, *args, **kwargs)
            params = [parameters] if isinstance(parameters, torch.Tensor) else list(parameters)
            threshold = args[0] if args else kwargs.get("max_norm", kwargs.get("clip_value"))
            recorder._before_clip(params, threshold)
            return original(params, *args, **kwargs)

        return _wraps(clip, original)

    def _before_clip(self, params: list[torch.Tensor], threshold: Any) -> None:
        if threshold is None or not math.isfinite(float(threshold)):
            return  # clipping to infinity only measures the norm (the Hugging Face Trainer does this)
        # Gradients still multiplied by the loss scale (no scaler.unscale_ first): the threshold means nothing
        # here (GL103). Recorded as a finding, not as clipping, with G taken as the norm divided by the scale.
        scale = self._scaled[2].get_scale() if self._scaled_backward and not self._unscaled else 1.0
        self._clip_scaled = self._clip_scaled or scale != 1.0
        new = [p for p in params if p.grad is not None and id(p) not in self._clip_norms]
        if new:
            grads = [_values(p.grad) for p in new]
            # Read now (one sync per clip): clipping rescales these gradients in place, so a norm that overflowed
            # could not be measured again later. The first clip of a step sees them as backward left them.
            with torch.no_grad():
                norms = _exact_norms(_read(_norms(grads)), grads)
            self._clip_norms.update(zip(map(id, new), (norm / scale for norm in norms)))
        self._clip_threshold = float(threshold)

    # ----- GradScaler -------------------------------------------------------------------------------
    def _wrap_scale(self, original: Callable[..., Any]) -> Callable[..., Any]:
        recorder = self

        def scale(scaler: Any, outputs: Any) -> Any:
            scaled = original(scaler, outputs)
            if recorder._mine() and isinstance(outputs, torch.Tensor):
                recorder._scaled = (scaled, outputs, scaler)
                recorder._optimizer_seen = True  # a scaler steps an optimizer: no hand-written updates here
            return scaled

        return _wraps(scale, original)

    def _wrap_unscale(self, original: Callable[..., Any]) -> Callable[..., Any]:
        recorder = self

        def unscale_(scaler: Any, optimizer: Any) -> Any:
            recorder._unscaled = True
            return original(scaler, optimizer)

        return _wraps(unscale_, original)

    def _wrap_scaler_step(self, original: Callable[..., Any]) -> Callable[..., Any]:
        recorder = self

        def step(scaler: Any, optimizer: Any, *args: Any, **kwargs: Any) -> Any:
            if not recorder._mine() or not scaler.is_enabled():
                return original(scaler, optimizer, *args, **kwargs)
            steps = recorder._optimizer_steps
            result = original(scaler, optimizer, *args, **kwargs)
            if recorder._optimizer_steps == steps:
                recorder._on_skipped(scaler)
            return result

        return _wraps(step, original)

    def _on_skipped(self, scaler: Any) -> None:
        """The scaler found Inf/NaN in the scaled gradients and did not call optimizer.step: normal loss scaling."""
        self._scaler = scaler
        self._skipped_scales.append(scaler.get_scale())
        # What was clipped belonged to the skipped step.
        self._clip_norms = {}
        self._clip_threshold = None
        self._clip_scaled = False

    # ----- backward ---------------------------------------------------------------------------------
    def _wrap_backward(self, original: Callable[..., Any]) -> Callable[..., Any]:
        recorder = self

        def backward(tensors: Any, *args: Any, **kwargs: Any) -> Any:
            # Tensor.backward calls torch.autograd.backward: only the outer call counts.
            if recorder._in_backward or not recorder._mine():
                return original(tensors, *args, **kwargs)
            recorder._in_backward = True
            try:
                recorder._before_backward(tensors)
                result = original(tensors, *args, **kwargs)
                recorder._after_backward()
                return result
            finally:
                recorder._in_backward = False

        return _wraps(backward, original)

    def _before_backward(self, tensors: Any) -> None:
        self.backward_calls += 1
        if isinstance(tensors, (tuple, list)):
            tensors = tensors[0] if len(tensors) == 1 else None
        output = tensors if isinstance(tensors, torch.Tensor) else None
        loss = output
        self._scaled_backward = self._scaled is not None and output is self._scaled[0]
        if self._scaled_backward:
            self._unscaled = False
            loss = self._scaled[1]  # the loss the script computed, not the loss times the scale
        self._loss = loss.detach() if loss is not None and loss.numel() == 1 else None
        self._check_cleared()
        if self._pending_manual is not None:
            self._finish_manual_step()
        # Before any optimizer, this backward may be training tensors by hand: find them in its graph, which
        # backward frees.
        self._leaves = _graph_leaves(output) if not self._optimizer_seen and output is not None else None

    def _after_backward(self) -> None:
        for key, marks in self._grad_marks.items():
            # The backward accumulated into gradients not cleared yet: mark them as they are now.
            self._grad_marks[key] = [(p, id(p.grad), p.grad._version) for p, _, _ in marks if p.grad is not None]
        leaves, self._leaves = self._leaves, None
        if self._optimizer_seen:
            return
        # No optimizer step yet: this may be a hand-written update. Read the gradients now, before the
        # script applies and clears them; the step counts once the parameters are seen to change.
        if leaves is None or self._fixed_roots:  # a GradientMonitor watches its model's parameters only
            leaves = [p for root in self._roots.values() for p in root.parameters()]
        params = [p for p in leaves if p.grad is not None]
        if params:
            self._pending_manual = self._measure(params, [p.grad for p in params], key=None, eager=True)

    def _check_cleared(self) -> None:
        """At each backward: were the gradients each optimizer last stepped with cleared since that step?

        zero_grad() sets .grad to None; grad.zero_() bumps its version: either way they were cleared.
        """
        for key, marks in list(self._grad_marks.items()):
            if any(
                p.grad is None or id(p.grad) != grad_id or p.grad._version != version for p, grad_id, version in marks
            ):
                self._cleared[key] = True
                del self._grad_marks[key]

    # ----- gradients returned by a call: torch.autograd.grad, torch.func.grad -------------------------------
    def _wrap_autograd_grad(self, original: Callable[..., Any]) -> Callable[..., Any]:
        recorder = self

        def grad(outputs: Any, inputs: Any, *args: Any, **kwargs: Any) -> Any:
            result = original(outputs, inputs, *args, **kwargs)
            busy = recorder._in_backward or recorder._in_functional
            if recorder._optimizer_seen or busy or not recorder._mine():
                return result
            inputs = [inputs] if isinstance(inputs, torch.Tensor) else list(inputs)
            pairs = [(x, g) for x, g in zip(inputs, result) if g is not None and x.is_leaf]
            if pairs:
                loss = outputs[0] if isinstance(outputs, (tuple, list)) and len(outputs) == 1 else outputs
                recorder._on_gradients([x for x, _ in pairs], [g for _, g in pairs], loss)
            return result

        return _wraps(grad, original)

    def _wrap_functional(self, original: Callable[..., Any], *, with_value: bool) -> Callable[..., Any]:
        recorder = self

        def transform(func: Callable[..., Any], argnums: Any = 0, has_aux: bool = False, **kw: Any) -> Any:
            inner = original(func, argnums, has_aux, **kw)

            def call(*args: Any, **kwargs: Any) -> Any:
                if recorder._in_functional or not recorder._mine():
                    return inner(*args, **kwargs)
                recorder._in_functional = True  # torch.func.grad calls torch.autograd.grad inside
                try:
                    result = inner(*args, **kwargs)
                finally:
                    recorder._in_functional = False
                if not recorder._optimizer_seen:
                    recorder._on_functional_result(args, argnums, has_aux, with_value, result)
                return result

            return _wraps(call, inner)

        return _wraps(transform, original)

    def _on_functional_result(
        self, args: tuple, argnums: int | tuple[int, ...], has_aux: bool, with_value: bool, result: Any
    ) -> None:
        from torch.utils._pytree import keystr, tree_flatten_with_path, tree_leaves

        grads, rest = result if (with_value or has_aux) else (result, None)
        value = (rest[0] if has_aux else rest) if with_value else None
        inputs = args[argnums] if isinstance(argnums, int) else tuple(args[i] for i in argnums)
        flat, _ = tree_flatten_with_path(inputs)
        grad_leaves = tree_leaves(grads)
        pairs = [
            (keystr(path), x, g)
            for (path, x), g in zip(flat, grad_leaves)
            if isinstance(x, torch.Tensor) and isinstance(g, torch.Tensor)
        ]
        if pairs:
            for name, x, _ in pairs:
                self._leaf_names[id(x)] = f"params{name}" if name else "params"
            self._on_gradients([x for _, x, _ in pairs], [g for _, _, g in pairs], value)

    def _on_gradients(self, params: list[torch.Tensor], grads: list[torch.Tensor], loss: Any) -> None:
        """Gradients a call returned: a step once the parameters change by the next call (in place, or as the
        new tensors passed to it)."""
        if self._pending_manual is not None:
            self._finish_manual_step(params)
        loss = loss if isinstance(loss, torch.Tensor) and loss.numel() == 1 else None
        self._loss = loss.detach() if loss is not None else None
        self._pending_manual = self._measure(params, grads, key=None, eager=True)

    # ----- one step ---------------------------------------------------------------------------------
    def _measure(
        self, params: list[torch.Tensor], grads: list[torch.Tensor], *, key: str | None, eager: bool = False
    ) -> dict[str, Any]:
        """Launch the reductions for the gradients a step is about to apply, and copy what it will change.

        eager: read the norms now, because the script may zero the gradients before the step is known to be over.
        """
        with torch.no_grad():
            grads = [_values(g) for g in grads]
            norms = _norms(grads)
            views, samples, addresses = self._samples(key, params)
            torch._foreach_copy_(samples, views)
        cleared = False if key in self._grad_marks else self._cleared.pop(key, None)
        state = {
            "key": key,
            "params": params,
            "grads": grads,
            "versions": [g._version for g in grads],
            "norms": norms,
            "read": _exact_norms(_read(norms), grads) if eager else None,
            "samples": samples,
            "views": views,
            "addresses": addresses,
            "loss": self._loss,
            "clip_norms": self._clip_norms,
            "threshold": self._clip_threshold,
            "clip_scaled": self._clip_scaled,
            "cleared": cleared,
        }
        self._clip_norms = {}
        self._clip_threshold = None
        self._clip_scaled = False
        self._grad_marks[key] = [(p, id(p.grad), p.grad._version) for p in params if p.grad is not None]
        if not self._grad_marks[key]:
            del self._grad_marks[key]  # gradients returned by a call: nothing to clear
        return state

    def _samples(
        self, key: str | None, params: list[torch.Tensor]
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[int] | None]:
        """The first UPDATE_SAMPLE values of each parameter, buffers to copy them into before a step, and, where
        those are views that follow the parameters' values, the parameters' addresses.

        A view of a contiguous parameter shows its values after the step too, as long as the step updates it in
        place (at the same address). An optimizer's are kept while its parameters are the same tensors at the
        same addresses, so a step costs one copy and makes no new tensors. Hand-written updates get new ones
        (their tensors may be new each step), as do parameters whose slice is a copy (not contiguous) or whose
        memory is not their own (a DTensor's shard).
        """
        plain = all(type(p) in _PLAIN for p in params)
        addresses = [p.data_ptr() for p in params] if plain else None
        ids = [id(p) for p in params]
        cached = self._buffers.get(key) if key is not None else None
        if cached is not None and cached[0] == ids and cached[1] == addresses:
            views = cached[2] or [_sample_of(p) for p in params]
            return views, cached[3], addresses if cached[2] else None
        views = [_sample_of(p) for p in params]
        samples = [torch.empty_like(v) for v in views]
        live = plain and all(p.is_contiguous() for p in params)
        if key is not None:
            self._buffers[key] = (ids, addresses, views if live else None, samples)
        return views, samples, addresses if live else None

    def _finish_manual_step(self, new_params: list[torch.Tensor] | None = None) -> None:
        state, self._pending_manual = self._pending_manual, None
        old = state["params"]
        if new_params is not None and [p.shape for p in new_params] != [p.shape for p in old]:
            new_params = None
        record = self._finish_step(state, kind="backward", lr=None, current=new_params)
        if record is None:
            return  # nothing changed: gradients are being accumulated, or only inspected
        self._emit_step(record)

    def _label(self, optimizer: torch.optim.Optimizer) -> str:
        label = self._labels.get(id(optimizer))
        if label is None:
            name = type(optimizer).__name__
            same = sum(existing.split("#")[0] == name for existing in self._labels.values())
            label = self._labels[id(optimizer)] = f"{name}#{same + 1}" if same else name
        return label

    def _measure_optimizer(self, optimizer: torch.optim.Optimizer) -> dict[str, Any] | None:
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        return self._measure(params, [p.grad for p in params], key=self._label(optimizer)) if params else None

    def _on_step_pre(self, optimizer: torch.optim.Optimizer, args: tuple, kwargs: dict) -> Any:
        if not self._mine() or not self._watched(optimizer):
            return None
        if not self._optimizer_seen:
            self._optimizer_seen = True
            self._grad_marks.pop(None, None)
        self._pending_manual = None
        # args holds the optimizer itself first, then step's own arguments.
        closure = kwargs.get("closure", args[1] if len(args) > 1 else None)
        if not callable(closure):
            self._step_state = self._measure_optimizer(optimizer)
            return None
        # The backward runs inside step() (LBFGS, Lightning): measure what the closure's first call leaves,
        # which is what this step applies (later calls of an LBFGS step see parameters it already moved).
        self._step_state = None
        measured = False

        def measured_closure() -> Any:
            nonlocal measured
            result = closure()
            if not measured:
                measured = True
                self._step_state = self._measure_optimizer(optimizer)
            return result

        if "closure" in kwargs:
            return args, {**kwargs, "closure": measured_closure}
        return (args[0], measured_closure, *args[2:]), kwargs

    def _on_step_post(self, optimizer: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
        if not self._mine():
            return
        self._optimizer_steps += 1
        if not self._watched(optimizer):
            return
        state, self._step_state = self._step_state, None
        if state is None:
            return
        lr = optimizer.param_groups[0].get("lr")
        record = self._finish_step(state, kind="optimizer", lr=float(lr) if lr is not None else None, always=True)
        if record is not None:
            self._emit_step(record)

    def _finish_step(
        self,
        state: dict[str, Any],
        *,
        kind: str,
        lr: float | None,
        always: bool = False,
        current: list[torch.Tensor] | None = None,
    ) -> StepRecord | None:
        """Read everything the step left behind in one sync and build its record.

        current: the parameters after the step where it made new tensors (functional training).
        """
        params: list[torch.Tensor] = state["params"]
        current = current or params
        n = len(params)
        last = self._max_steps is not None and self.steps + 1 >= self._max_steps
        measure_params = self._quiet_steps == 0 or self._quiet_steps >= PARAM_NORM_EVERY or last
        with torch.no_grad():
            param_norms = _norms([_local(p.detach()) for p in current]) if measure_params else []
            views = state["views"]
            moved = state["addresses"] is None or state["addresses"] != [p.data_ptr() for p in params]
            if moved or current is not params:
                views = [_sample_of(p) for p in current]  # copies, or the step gave the parameters new memory
            changes = torch._foreach_sub(views, state["samples"])
            values = [*param_norms, *torch._foreach_norm([*changes, *state["samples"]])]
            if state["read"] is None:
                values.extend(state["norms"])
            if state["loss"] is not None:
                values.append(state["loss"].reshape(()))
            values.extend(check[2] for check in self._checks)
            flat = _read(values)
        m = len(param_norms)
        pnorms, dnorms, onorms = flat[:m], flat[m : m + n], flat[m + n : m + 2 * n]
        rest = flat[m + 2 * n :]
        if state["read"] is None:
            # A gradient the script changed since (scaled, zeroed) can no longer be measured again.
            unchanged = [g if g._version == v else None for g, v in zip(state["grads"], state["versions"])]
            after = _exact_norms(rest[:n], unchanged)
            rest = rest[n:]
        else:
            after = state["read"]
        loss = rest.pop(0) if state["loss"] is not None else None
        self._resolve_checks(rest)
        pnorms = _exact_norms(pnorms, current)  # none when they were not measured
        dnorms = _exact_norms(dnorms, changes)
        onorms = _exact_norms(onorms, state["samples"])
        changed = [i for i in range(n) if dnorms[i] != 0]
        if not changed and not always:
            return None
        before = [state["clip_norms"].get(id(p), norm) for p, norm in zip(params, after)]
        # math.hypot scales as it sums: no square overflows, however large a finite norm is.
        delta = math.hypot(*(dnorms[i] for i in changed))
        base = math.hypot(*(onorms[i] for i in changed))
        total_before = math.hypot(*before)
        total_params = math.hypot(*pnorms) if measure_params else None
        names = self._param_names(params)  # first: it refreshes the map of parameters to modules
        order = sorted(range(n), key=lambda i: self._forward_rank(params[i]))
        nonfinite = []
        if loss is not None and not math.isfinite(loss):
            nonfinite.append("loss")
        if not math.isfinite(total_before):
            nonfinite.append("grad")
        if total_params is not None and not math.isfinite(total_params):
            nonfinite.append("param")
        skipped, self._skipped_scales = self._skipped_scales, []
        update_ratio = delta / base if changed and base > 0 else None
        quiet = update_ratio is not None and update_ratio < QUIET_UPDATE and not nonfinite
        if not quiet:
            self._quiet_steps = 0
        else:
            self._quiet_steps = 1 if measure_params else self._quiet_steps + 1
        self.steps += 1
        return StepRecord(
            step=self.steps,
            kind=kind,
            loss=loss,
            grad_norm=total_before,
            grad_norm_after=math.hypot(*after),
            param_norm=total_params,
            update_ratio=update_ratio,
            lr=lr,
            clipped=bool(state["clip_norms"]) and not state["clip_scaled"],
            clip_threshold=state["threshold"],
            grad_norms={names[i]: before[i] for i in order},
            param_norms={names[i]: pnorms[i] for i in order} if measure_params else {},
            nonfinite=nonfinite,
            nonfinite_origin=self._origin if nonfinite else None,
            grads_cleared=state["cleared"],
            optimizer=state["key"],
            skipped_scales=skipped,
            loss_scale=self._scaler.get_scale() if skipped else None,
            clip_scaled=state["clip_scaled"],
        )

    def _emit_step(self, record: StepRecord) -> None:
        self._emit_recurrent_start()
        self._emit(record.to_json())
        if self._stop is not None and (
            record.nonfinite or (self._max_steps is not None and record.step >= self._max_steps)
        ):
            self._stop()

    def _emit_recurrent_start(self) -> None:
        for module, name, sigma, bound in self._recurrent_start:
            gated = module.mode in ("LSTM", "GRU")
            record = RecurrentRecord(f"{self._module_name(module)}.{name}", sigma, bound, "start", gated)
            self._emit(record.to_json())
        self._recurrent_start = []

    def finish(self) -> None:
        """Flush a hand-written update still waiting to be measured, and the recurrent weights at the end."""
        if not self._mine():
            return
        self._stop = None  # the run is over: flushing its last step must not try to end it again
        if self._pending_manual is not None:
            self._finish_manual_step()
        self._emit_recurrent_start()
        if self.steps:
            with torch.no_grad():
                for module in self._recurrent.values():
                    for name, weight, bound in _recurrent_blocks(module):
                        sigma = float(torch.linalg.matrix_norm(weight.detach().float(), ord=2))
                        gated = module.mode in ("LSTM", "GRU")
                        record = RecurrentRecord(f"{self._module_name(module)}.{name}", sigma, bound, "end", gated)
                        self._emit(record.to_json())
