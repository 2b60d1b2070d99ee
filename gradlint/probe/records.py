"""What the probe records: one dataclass per record kind, shared by the child, the monitor and the analysis.

Records cross a process boundary as JSON lines, so every field is a plain value. Non-finite floats are kept
as the strings "nan", "inf" and "-inf": the JSON we print must be valid JSON, and a NaN is evidence we keep.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

NONFINITE_TEXT = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def encode_float(value: float | None) -> float | str | None:
    if value is None or math.isfinite(value):
        return value
    if math.isnan(value):
        return "nan"
    return "inf" if value > 0 else "-inf"


def decode_float(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        return NONFINITE_TEXT[value]
    return float(value)


def is_finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


_FLOAT_FIELDS = (
    "loss", "grad_norm", "grad_norm_after", "param_norm", "update_ratio", "lr", "clip_threshold", "loss_scale"
)


@dataclass
class StepRecord:
    """One optimization step (an optimizer step, or a backward pass followed by a manual update)."""

    step: int
    kind: str  # "optimizer" or "backward"
    loss: float | None  # the tensor backward() ran on, when it was a scalar
    grad_norm: float  # G: total gradient norm before clipping
    grad_norm_after: float  # total gradient norm the update used (after clipping)
    param_norm: float | None  # None on the steps between measurements (instrument.PARAM_NORM_EVERY)
    update_ratio: float | None  # U: |change made by the step| / |params|, over params the step changed
    lr: float | None
    clipped: bool
    clip_threshold: float | None
    grad_norms: dict[str, float] = field(default_factory=dict)  # per parameter, before clipping
    param_norms: dict[str, float] = field(default_factory=dict)
    nonfinite: list[str] = field(default_factory=list)  # any of "loss", "grad", "param"
    nonfinite_origin: str | None = None  # "input" or the first module whose output went non-finite
    grads_cleared: bool | None = None  # were .grad cleared since this optimizer's previous step (None: first step)
    optimizer: str | None = None  # which optimizer took the step ("Adam", "Adam#2"); None for hand-written updates
    skipped_scales: list[float] = field(default_factory=list)  # loss scales of steps a GradScaler skipped before it
    loss_scale: float | None = None  # the GradScaler's scale at this step, recorded after skipped steps
    clip_scaled: bool = False  # clipping ran on gradients still multiplied by the loss scale (not counted as clipping)
    pid: int | None = None  # the process that took the step (the probe watches every process a script starts)
    rank: int | None = None  # its torch.distributed rank, where it has one

    def to_json(self) -> dict[str, Any]:
        # Not asdict(): it deep-copies the per-layer maps, only to have them replaced below (a step's record
        # is made every step, while the run is timed).
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["nonfinite"] = list(self.nonfinite)
        data["skipped_scales"] = list(self.skipped_scales)
        for name in _FLOAT_FIELDS:
            data[name] = encode_float(data[name])
        data["grad_norms"] = {k: encode_float(v) for k, v in self.grad_norms.items()}
        data["param_norms"] = {k: encode_float(v) for k, v in self.param_norms.items()}
        data["type"] = "step"
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StepRecord:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for name in _FLOAT_FIELDS:
            values[name] = decode_float(values.get(name))
        values["grad_norms"] = {k: decode_float(v) for k, v in values.get("grad_norms", {}).items()}
        values["param_norms"] = {k: decode_float(v) for k, v in values.get("param_norms", {}).items()}
        return cls(**values)


@dataclass(frozen=True)
class RecurrentRecord:
    """Largest singular value of a recurrent weight times the bound on its activation's derivative."""

    name: str  # e.g. "Model.rnn.weight_hh_l0"
    sigma: float
    derivative_bound: float
    when: str  # "start" (first forward) or "end"
    gated: bool = False  # LSTM/GRU: gates scale the recurrent path, so the radius is only an upper bound

    @property
    def radius(self) -> float:
        return self.sigma * self.derivative_bound

    def to_json(self) -> dict[str, Any]:
        return {"type": "recurrent", **asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RecurrentRecord:
        return cls(
            data["name"], float(data["sigma"]), float(data["derivative_bound"]), data["when"], bool(data.get("gated"))
        )


@dataclass(frozen=True)
class EndRecord:
    """How the script's run ended, as the child saw it."""

    # "completed", "stopped" (step budget spent or a non-finite value seen), "exit", "error",
    # or "running" (GradientMonitor asked mid-run)
    status: str
    exit_code: int | None = None  # the script's sys.exit code
    error: str | None = None  # "ValueError: ..." when the script raised
    forward_calls: int = 0  # model forward passes seen: tells "never trained" from "never ran a model"
    backward_calls: int = 0
    pid: int | None = None
    rank: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"type": "end", **asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EndRecord:
        return cls(
            data["status"],
            data.get("exit_code"),
            data.get("error"),
            int(data.get("forward_calls", 0)),
            int(data.get("backward_calls", 0)),
            data.get("pid"),
            data.get("rank"),
        )


@dataclass
class RunInfo:
    """What the parent knows about the run beyond the records."""

    end: EndRecord | None = None  # None: the child died or was killed before it could say
    timed_out: bool = False
    returncode: int | None = None
    output_tail: list[str] = field(default_factory=list)  # the script's last lines of output
