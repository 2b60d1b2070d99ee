"""Data rules: training batch sizes too large for plain learning-rate settings (GL401)."""
from __future__ import annotations

from typing import Iterator

from gradlint.checks.context import CheckContext
from gradlint.checks.registry import register
from gradlint.findings import Finding, Severity


def origin_of(ctx: CheckContext, value) -> str:
    if value.origin == "literal" or value.node is None:
        return ""
    return f" from {value.origin} at {ctx.where(value.node)}"


@register(
    "GL401",
    "huge-batch-size",
    Severity.WARNING,
    "A training batch size resolves to at least max-batch-size.",
    options=("max-batch-size",),
)
def huge_batch_size(ctx: CheckContext) -> Iterator[Finding]:
    facts = ctx.facts
    limit = ctx.option("max-batch-size")
    batches = facts.data.batch_sizes()
    if not batches:
        return
    trains = bool(
        facts.loops.paths() or facts.frameworks.keras_compiles() or facts.frameworks.lightning_fits()
        or facts.frameworks.hf_trainings()
    )
    for batch in batches:
        v = batch.value
        if v is None or isinstance(v.value, bool) or not isinstance(v.value, (int, float)) or v.value < limit:
            continue
        if batch.evaluation is not None:
            continue
        if not (trains or batch.named_train):
            continue  # no training in the file, and nothing says this loader trains
        where = {
            "DataLoader": "DataLoader(batch_size=...)",
            "fit": "fit(batch_size=...)",
            "tf.data batch": "tf.data .batch(...)",
            "per_device_train_batch_size": "TrainingArguments(per_device_train_batch_size=...)",
            "torchtext iterator": "torchtext iterator(batch_size=...)",
        }[batch.source]
        yield ctx.finding(
            "GL401",
            batch.node if batch.node is not None else batch.call,
            f"batch size {v.value:g}{origin_of(ctx, v)} in {where} is at least max-batch-size ({limit})",
            "use a smaller batch, or scale the learning rate to the batch with a warmup (Goyal et al. 2017) and "
            "clip the gradients",
        )
