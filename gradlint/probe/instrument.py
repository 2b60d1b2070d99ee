"""Hooks that watch a training run from inside its process and turn each step into a StepRecord.

Only public torch extension points are used: the global optimizer step hooks, the global module forward
(pre-)hooks, and wrappers around the clipping functions and the two backward entry points. Global *backward*
module hooks are deliberately not used: they wrap module outputs in autograd functions that break models with
in-place operations.

Cost matters (the probe must stay under 10% of step time), so per step the recorder launches a few fused
reductions (torch._foreach_norm over all gradients; one sum per leaf-module output for the NaN/Inf check) and
reads them back with a single .tolist(): one device sync per step.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from typing import Any

import torch

from gradlint.probe.records import RecurrentRecord, StepRecord

# U is measured on a contiguous prefix of each parameter: copying every weight before each step would cost
# as much as the optimizer itself, and a prefix of this size estimates the ratio well.
UPDATE_SAMPLE = 1 << 16
# Forward checks queued with no step to resolve them (inference loops) are resolved in batches of this size.
MAX_PENDING_CHECKS = 4096

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
        self._depth = 0
        self._leaf: dict[int, bool] = {}
        self._checking = True
        self._checks: list[tuple[str, torch.nn.Module, torch.Tensor]] = []
        self._origin: str | None = None
        self._recurrent: dict[int, torch.nn.RNNBase] = {}
        self._recurrent_start: list[tuple[torch.nn.RNNBase, str, float, float]] = []
        self._in_backward = False
        self._loss: torch.Tensor | None = None
        self._clip_norms: dict[int, torch.Tensor] = {}
        self._clip_threshold: float | None = None
        self._optimizer_seen = False
        self._step_state: dict[str, Any] | None = None
        self._pending_manual: dict[str, Any] | None = None
        self._grad_marks: list[tuple[torch.Tensor, int, int]] | None = None
        self._cleared: bool | None = None
        self._buffers: list[torch.Tensor] = []
        self._buffers_key: tuple[int, ...] = ()
        self._handles: list[Any] = []
        self._patched: list[tuple[Any, str, Any]] = []
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
        import torch.nn.utils
        import torch.nn.utils.clip_grad

        for owner in (torch.nn.utils, torch.nn.utils.clip_grad):
            self._patch(owner, "clip_grad_norm_", self._wrap_clip(owner.clip_grad_norm_))
            self._patch(owner, "clip_grad_value_", self._wrap_clip(owner.clip_grad_value_))
        self._patch(torch.Tensor, "backward", self._wrap_backward(torch.Tensor.backward, tensor_method=True))
        self._patch(torch.autograd, "backward", self._wrap_backward(torch.autograd.backward, tensor_method=False))

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

    # ----- forward: roots, names, NaN/Inf origin, recurrent weights ---------------------------------
    def _on_forward_pre(self, module: torch.nn.Module, args: tuple) -> None:
        if not self._mine():
            return
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
            leaf = self._leaf[id(module)] = next(module.children(), None) is None
        # Containers mostly pass their last child's output on: checking leaves (and roots) is enough.
        if leaf or self._depth == 0:
            self._checks.extend(("output", module, _finite_probe(t)) for t in _tensors_in(output))
        if len(self._checks) > MAX_PENDING_CHECKS:
            self._resolve_checks([float(v) for v in torch.stack([c[2].float().cpu() for c in self._checks]).tolist()])

    def _resolve_checks(self, values: list[float]) -> None:
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
        used: dict[str, int] = {}
        for root in self._roots.values():
            label = type(root).__name__
            used[label] = used.get(label, 0) + 1
            if used[label] > 1:
                label = f"{label}#{used[label]}"
            for module_name, module in root.named_modules():
                names.setdefault(id(module), f"{label}.{module_name}" if module_name else label)
            for param_name, param in root.named_parameters():
                names.setdefault(id(param), f"{label}.{param_name}")
        self._names = names
        self._names_for = len(self._roots)

    def _module_name(self, module: torch.nn.Module) -> str:
        self._refresh_names()
        return self._names.get(id(module), type(module).__name__)

    def _param_names(self, params: list[torch.nn.Parameter]) -> list[str]:
        self._refresh_names()
        return [
            self._names.get(id(p), f"param{i}({'x'.join(map(str, p.shape))})") for i, p in enumerate(params)
        ]

    # ----- clipping ---------------------------------------------------------------------------------
    def _wrap_clip(self, original: Callable[..., Any]) -> Callable[..., Any]:
        recorder = self

        def clip(parameters: Any, *args: Any, **kwargs: Any) -> Any:
            if not recorder._mine():
                return original(parameters, *args, **kwargs)
            params = [parameters] if isinstance(parameters, torch.Tensor) else list(parameters)
            with_grad = [p for p in params if p.grad is not None]
            if with_grad:
                with torch.no_grad():
                    norms = torch._foreach_norm([p.grad for p in with_grad])
                for p, norm in zip(with_grad, norms):
                    # The first clip of a step sees the gradients as backward left them.
                    recorder._clip_norms.setdefault(id(p), norm)
            threshold = args[0] if args else kwargs.get("max_norm", kwargs.get("clip_value"))
            recorder._clip_threshold = float(threshold) if threshold is not None else None
            return original(params, *args, **kwargs)

        clip.__wrapped__ = original  # type: ignore[attr-defined]
        clip.__name__ = getattr(original, "__name__", "clip")
        clip.__doc__ = original.__doc__
        return clip

    # ----- backward ---------------------------------------------------------------------------------
    def _wrap_backward(self, original: Callable[..., Any], *, tensor_method: bool) -> Callable[..., Any]:
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

        backward.__wrapped__ = original  # type: ignore[attr-defined]
        backward.__name__ = "backward"
        backward.__doc__ = original.__doc__
        return backward

    def _before_backward(self, tensors: Any) -> None:
        self.backward_calls += 1
        if isinstance(tensors, (tuple, list)):
            tensors = tensors[0] if len(tensors) == 1 else None
        self._loss = tensors.detach() if isinstance(tensors, torch.Tensor) and tensors.numel() == 1 else None
        if self._grad_marks is not None:
            # zero_grad() sets .grad to None; grad.zero_() bumps its version: either way it was cleared.
            self._cleared = any(
                p.grad is None or id(p.grad) != grad_id or p.grad._version != version
                for p, grad_id, version in self._grad_marks
            )
            self._grad_marks = None
        if self._pending_manual is not None:
            self._finish_manual_step()

    def _after_backward(self) -> None:
        if self._optimizer_seen:
            return
        # No optimizer step yet: this may be a hand-written update. Read the gradients now, before the
        # script applies and clears them; the step counts once the parameters are seen to change.
        params = [p for root in self._roots.values() for p in root.parameters() if p.grad is not None]
        if params:
            self._pending_manual = self._measure_before_update(params)

    # ----- one step ---------------------------------------------------------------------------------
    def _measure_before_update(self, params: list[torch.nn.Parameter]) -> dict[str, Any]:
        with torch.no_grad():
            after = torch._foreach_norm([p.grad for p in params])
            before = [self._clip_norms.get(id(p), norm) for p, norm in zip(params, after)]
            samples = self._sample_buffers(params)
            torch._foreach_copy_(samples, [p.detach().reshape(-1)[:UPDATE_SAMPLE] for p in params])
        state = {
            "params": params,
            "after": after,
            "before": before,
            "samples": samples,
            "loss": self._loss,
            "clipped": bool(self._clip_norms),
            "threshold": self._clip_threshold,
            "cleared": self._cleared,
        }
        self._clip_norms = {}
        self._clip_threshold = None
        self._cleared = None
        self._grad_marks = [(p, id(p.grad), p.grad._version) for p in params]
        return state

    def _sample_buffers(self, params: list[torch.nn.Parameter]) -> list[torch.Tensor]:
        """Buffers for the parameters' values before a step, reused while the parameter set is the same."""
        key = tuple(id(p) for p in params)
        if self._buffers_key != key:
            self._buffers = [torch.empty_like(p.detach().reshape(-1)[:UPDATE_SAMPLE]) for p in params]
            self._buffers_key = key
        return self._buffers

    def _finish_manual_step(self) -> None:
        state, self._pending_manual = self._pending_manual, None
        record = self._finish_step(state, kind="backward", lr=None)
        if record is None:
            return  # nothing changed: gradients are being accumulated, or only inspected
        self._emit_step(record)

    def _on_step_pre(self, optimizer: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
        if not self._mine() or (self._optimizers is not None and id(optimizer) not in self._optimizers):
            return
        self._optimizer_seen = True
        self._pending_manual = None
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        self._step_state = self._measure_before_update(params) if params else None

    def _on_step_post(self, optimizer: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
        if not self._mine() or (self._optimizers is not None and id(optimizer) not in self._optimizers):
            return
        state, self._step_state = self._step_state, None
        if state is None:
            return
        lr = optimizer.param_groups[0].get("lr")
        record = self._finish_step(state, kind="optimizer", lr=float(lr) if lr is not None else None, always=True)
        if record is not None:
            self._emit_step(record)

    def _finish_step(self, state: dict[str, Any], *, kind: str, lr: float | None, always: bool = False) -> StepRecord | None:
        """Read everything the step left behind in one sync and build its record."""
        params: list[torch.nn.Parameter] = state["params"]
        n = len(params)
        with torch.no_grad():
            param_norms = torch._foreach_norm([p.detach() for p in params])
            new_samples = [p.detach().reshape(-1)[:UPDATE_SAMPLE] for p in params]
            deltas = torch._foreach_norm(torch._foreach_sub(new_samples, state["samples"]))
            old_norms = torch._foreach_norm(state["samples"])
            values = [*state["after"], *state["before"], *param_norms, *deltas, *old_norms]
            if state["loss"] is not None:
                values.append(state["loss"].reshape(()))
            values.extend(check[2] for check in self._checks)
            try:
                flat = torch.stack(values).tolist()
            except RuntimeError:  # mixed dtypes or devices
                device = values[0].device
                flat = torch.stack([v.to(device=device, dtype=torch.float32) for v in values]).tolist()
        after, before, pnorms, dnorms, onorms = (flat[i * n : (i + 1) * n] for i in range(5))
        rest = flat[5 * n :]
        loss = rest.pop(0) if state["loss"] is not None else None
        self._resolve_checks(rest)
        changed = [i for i in range(n) if dnorms[i] != 0]
        if not changed and not always:
            return None
        delta = math.sqrt(sum(dnorms[i] ** 2 for i in changed))
        base = math.sqrt(sum(onorms[i] ** 2 for i in changed))
        total_before = math.sqrt(sum(v * v for v in before))
        total_after = math.sqrt(sum(v * v for v in after))
        total_params = math.sqrt(sum(v * v for v in pnorms))
        names = self._param_names(params)
        nonfinite = []
        if loss is not None and not math.isfinite(loss):
            nonfinite.append("loss")
        if not math.isfinite(total_before):
            nonfinite.append("grad")
        if not math.isfinite(total_params):
            nonfinite.append("param")
        self.steps += 1
        return StepRecord(
            step=self.steps,
            kind=kind,
            loss=loss,
            grad_norm=total_before,
            grad_norm_after=total_after,
            param_norm=total_params,
            update_ratio=delta / base if changed and base > 0 else None,
            lr=lr,
            clipped=state["clipped"],
            clip_threshold=state["threshold"],
            grad_norms=dict(zip(names, before)),
            param_norms=dict(zip(names, pnorms)),
            nonfinite=nonfinite,
            nonfinite_origin=self._origin if nonfinite else None,
            grads_cleared=state["cleared"],
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
