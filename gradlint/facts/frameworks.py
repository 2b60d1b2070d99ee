"""Training driven by a framework: Keras compile/fit, Lightning Trainer, Hugging Face Trainer."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import libcst as cst

from gradlint.facts.index import Scope, Site, dotted
from gradlint.facts.models import Model
from gradlint.facts.names import qualified_name
from gradlint.facts.values import Value, _arg, _keyword

if TYPE_CHECKING:
    from gradlint.facts.file import FileFacts
    from gradlint.facts.loops import Event

FIT_METHODS = frozenset({"fit", "train_on_batch", "fit_generator"})
LIGHTNING_TRAINERS = frozenset({"lightning.pytorch.Trainer", "lightning.Trainer"})
# Lightning 1.x builds a Trainer from parsed arguments too (its keywords override them).
LIGHTNING_FROM_ARGS = frozenset(f"{t}.from_argparse_args" for t in LIGHTNING_TRAINERS)
HF_ARGUMENTS_SUFFIX = ("TrainingArguments", "SFTConfig", "DPOConfig", "RewardConfig", "GRPOConfig", "PPOConfig")
HF_TRAINERS_SUFFIX = ("Trainer",)
KERAS_CLIP_KEYS = ("clipnorm", "clipvalue", "global_clipnorm")
# TensorFlow optimizer methods that apply gradients.
TF_UPDATES = frozenset({"apply_gradients", "minimize"})


@dataclass(eq=False)
class Clipping:
    """What a framework setting says about clipping: `clips` True/False/None (unknown)."""

    clips: bool | None
    setting: str  # "clipnorm=1.0", "gradient_clip_val=None (default)", "optimizer='adam'"
    value: Value | None = None


@dataclass(eq=False)
class KerasCompile:
    site: Site
    model: Model | None
    optimizer: cst.BaseExpression | None
    optimizer_call: cst.Call | None
    clipping: Clipping
    # The scopes of the fits that train the compiled model (none known for a builder that returns it).
    fits: tuple = ()


@dataclass(eq=False)
class LightningFit:
    trainer_call: cst.Call
    trainer_site: Site
    model: Model | None
    clipping: Clipping


@dataclass(eq=False)
class HFTraining:
    trainer_call: cst.Call
    trainer_site: Site
    model: Model | None
    arguments_call: cst.Call | None
    clipping: Clipping


def _positive(v: Value | None) -> bool | None:
    if v is None:
        return None
    if v.value is None:
        return False
    if isinstance(v.value, (int, float)) and not isinstance(v.value, bool):
        return v.value > 0
    return None


class FrameworkFacts:
    def __init__(self, facts: "FileFacts") -> None:
        self.facts = facts
        # The scopes a call of each function runs (ids), by the function's scope.
        self._reached: dict[int, set[int]] = {}

    def _sites(self, methods: frozenset | set) -> list[Site]:
        return [
            s
            for s in self.facts.index.all_sites
            if type(s.node) is cst.Call
            and type(s.node.func) is cst.Attribute
            and s.node.func.attr.value in methods
        ]

    # -- Keras -------------------------------------------------------------------------------

    def _needs(self, *words: str) -> bool:
        """A cheap text gate: a file that never spells these words cannot hold the pattern."""
        text = self.facts.source_text
        return text is None or all(w in text for w in words)

    @functools.cached_property
    def _keras_compiles(self) -> list[KerasCompile]:
        if not self._needs("compile") or not self._fit_sites:
            return []
        result = []
        for site in self._sites({"compile"}):
            text = dotted(site.node.func.value)
            in_builder = site.scope.is_function and self._returns_name(site.scope, text)
            fits = self._fits_of(site, text) or (self._fits_through_calls(site, text) if not in_builder else [])
            if not fits and not in_builder:
                continue
            compile_ = self._compile(site, fits)
            if compile_ is not None:
                result.append(compile_)
        return result

    @functools.cached_property
    def _builder_compiles(self) -> list[KerasCompile]:
        """Compiles in functions that return the model they compile (`def build(...): ... model.compile(...);
        return model`), fitted or not in this file: another file may fit what they return."""
        if not self._needs("compile"):
            return []
        fitted = {id(c.site.node): c for c in self._keras_compiles}
        result = []
        for site in self._sites({"compile"}):
            if site.scope.is_function and self._returns_name(site.scope, dotted(site.node.func.value)):
                compile_ = fitted.get(id(site.node)) or self._compile(site, [])
                if compile_ is not None:
                    result.append(compile_)
        return result

    def _compile(self, site: Site, fits) -> KerasCompile | None:
        call = site.node
        receiver = call.func.value
        model = self.facts.models.model_of(receiver, site.scope, site.seq)
        if model is not None and not any(l.qualname.startswith("keras.") for l in model.layers):
            return None  # a compile() that is not Keras's (torch.compile is a function, not this)
        optimizer = _arg(call, 0, "optimizer")
        return KerasCompile(site, model, optimizer, *self._keras_clipping(optimizer, site), tuple(fits))

    @functools.cached_property
    def _project_compiles(self) -> list[KerasCompile]:
        """Keras models of another file of the project that this file's calls compile and fit: a wrapper
        class built here and trained through its method (`s = Seq2SeqSummarizer(config)`, `s.fit(...)`, its
        `__init__` compiling `self.model` and its `fit` calling `self.model.fit_generator`). Each is
        reported at the call here that runs its compile."""
        if not self.facts.trains_through_project:
            return []
        loops = self.facts.loops
        reached: dict[int, tuple[Site, "FileFacts", set[int]]] = {}  # target scope -> first call, its file, scopes
        for site in self.facts.index.all_sites:
            if type(site.node) is not cst.Call:
                continue
            target = loops.callee(site) or self._project_init(site)
            if target is None or id(target) in reached:
                continue
            home = loops.home(target)
            if home is self.facts or not home.frameworks._keras_compiles:
                continue
            reached[id(target)] = (site, home, self._reach(target))
        result = []
        seen: set[int] = set()
        for _site, home, _scopes in reached.values():
            for compile_ in home.frameworks._keras_compiles:
                if id(compile_) in seen or not compile_.fits:
                    continue
                seen.add(id(compile_))
                runs = next((c for c, h, sc in reached.values() if h is home and id(compile_.site.scope) in sc), None)
                fitted = any(h is home and any(id(f) in sc for f in compile_.fits) for _c, h, sc in reached.values())
                if runs is None or not fitted:
                    continue
                loops.anchors.setdefault(id(compile_.site.node), (runs, home))
                result.append(compile_)
        # A model a builder of another file compiles and returns, fitted here (`self.model =
        # textgenrnn_model(...)`, then `model_t = self.model; model_t.fit(...)`): reported at the fit.
        for site in self._fit_sites:
            made = loops.constructor(site.node.func.value, site.scope, site.seq)
            if made is None:
                continue
            made_in = loops.scope_of_call(made)
            home = loops.home(made_in)
            if home is self.facts:
                continue
            for compile_ in home.frameworks._builder_compiles:
                if compile_.site.scope is not made_in or id(compile_) in seen:
                    continue
                at = compile_.site
                if home.loops.constructor(at.node.func.value, at.scope, at.seq) is not made:
                    continue  # another model the builder may compile (on another branch)
                seen.add(id(compile_))
                loops.anchors.setdefault(id(compile_.site.node), (site, home))
                result.append(compile_)
        return result

    def _reach(self, target: Scope) -> set[int]:
        """The scopes a call of `target` runs (ids), asked once per target."""
        if id(target) not in self._reached:
            home = self.facts.loops.home(target)
            self._reached[id(target)] = {id(s) for s in home.regularization.reachable([target])}
        return self._reached[id(target)]

    def _init_of(self, site: Site) -> Scope | None:
        """`Trainer(model)`: the `__init__` of a class of this file or of another of the project."""
        return self.facts.constructor_of(site) or self._project_init(site)

    def _project_init(self, site: Site) -> Scope | None:
        """`Seq2SeqSummarizer(config)` of a class of another file: its `__init__`."""
        qual = qualified_name(site.node.func, site.scope, site.seq) or ""
        if not qual.rsplit(".", 1)[-1][:1].isupper():
            return None
        other = self.facts.imported_class(qual)
        return other[0].method(other[1], "__init__") if other is not None else None

    def _fits_of(self, site: Site, text: str | None) -> list[Scope]:
        """The scopes that fit the model a compile call compiles: the fits of the same name, and for a
        wrapper class's model, compiled in one method (`model.compile(...)`, then `self.model = model`, or
        `self.model.compile(...)`), the fits of `self.model` in the methods of the same class."""
        if text is None:
            return []
        fits = self._fit_sites
        cls = site.scope.cls
        names = set()
        if cls is not None:
            if text.startswith("self.") and text.count(".") == 1:
                names.add(text)
            elif "." not in text:
                for attr, bindings in cls.self_attrs.items():
                    if any(b.scope is site.scope and type(b.value) is cst.Name and b.value.value == text for b in bindings):
                        names.add(f"self.{attr}")
        return [
            s.scope for s in fits
            if dotted(s.node.func.value) == text or (s.scope.cls is cls and dotted(s.node.func.value) in names)
        ]

    def _fits_through_calls(self, site: Site, text: str | None) -> list[Scope]:
        """The fits of a model compiled here and handed to a function or a trainer class that fits it
        (`trainer = Trainer(model, preprocessor=p)`, then `trainer.train(...)` runs
        `self._model.fit_generator(...)`, in this file or another of the project), when a call here runs
        that fit."""
        if text is None or "." in text:
            return []
        loops = self.facts.loops
        calls = [c for c in site.scope.calls if c.seq > site.seq]
        handed = []  # (function or __init__ that takes the model, the parameter's name)
        for call_site in calls:
            for position, arg in enumerate(a for a in call_site.node.args if a.keyword is None):
                if arg.star or type(arg.value) is not cst.Name or arg.value.value != text:
                    continue
                handed.append((call_site, position, None))
            for arg in call_site.node.args:
                if arg.keyword is not None and type(arg.value) is cst.Name and arg.value.value == text:
                    handed.append((call_site, None, arg.keyword.value))
        if not handed:
            return []
        found = []
        reached: set[int] | None = None
        for call_site, position, keyword in handed:
            target = loops.callee(call_site) or self._init_of(call_site)
            if target is None:
                continue
            names = [p.name.value for p in target.params]
            if target.cls is not None and names and names[0] in ("self", "cls"):
                names = names[1:]
            param = keyword if keyword is not None else names[position] if position < len(names) else None
            if param is None or param not in names:
                continue
            receivers = {param}
            cls = target.cls
            if cls is not None:
                for attr, bindings in cls.self_attrs.items():
                    if any(b.scope is target and type(b.value) is cst.Name and b.value.value == param for b in bindings):
                        receivers.add(f"self.{attr}")
            home = loops.home(target)
            for fit in home.frameworks._fit_sites:
                receiver = dotted(fit.node.func.value)
                if receiver == param and fit.scope is target or (
                    receiver in receivers and receiver.startswith("self.") and fit.scope.cls is cls
                ):
                    if reached is None:
                        # What the calls here after the compile run (a fit in another method must be run).
                        targets = [loops.callee(c) or self._init_of(c) for c in calls]
                        reached = set().union(*(self._reach(t) for t in targets if t is not None))
                    if id(fit.scope) in reached:
                        found.append(fit.scope)
        return found

    @functools.cached_property
    def _fit_sites(self) -> list[Site]:
        return self._sites(FIT_METHODS)

    @staticmethod
    def _returns_name(scope: Scope, name: str | None) -> bool:
        return name is not None and any(dotted(r) == name for r in scope.returns)

    def _keras_clipping(self, optimizer, site: Site) -> tuple[cst.Call | None, Clipping]:
        if optimizer is None:
            return None, Clipping(False, "no optimizer given (Keras's default 'rmsprop' string)")
        made = optimizer
        if type(optimizer) is not cst.Call:
            v = self.facts.values.value(optimizer, site.scope, site.seq)
            if v is not None and isinstance(v.value, str):
                return None, Clipping(False, f"optimizer={v.value!r}", v)
            made = self.facts.optimizers.construction(optimizer, site.scope, site.seq)
        if type(optimizer) is cst.SimpleString:
            return None, Clipping(False, f"optimizer={optimizer.evaluated_value!r}")
        if made is None:
            return None, Clipping(None, "optimizer built elsewhere")
        scope = self.facts.scope_of_call(made)
        if any(a.star == "**" for a in made.args):
            return made, Clipping(None, "optimizer options passed through **kwargs")
        for key in KERAS_CLIP_KEYS:
            node = _keyword(made, key)
            if node is not None:
                v = self.facts.values.value(node, scope)
                clips = _positive(v)
                return made, Clipping(True if clips is None else clips, f"{key}={self.facts.code(node)}", v)
        return made, Clipping(False, "optimizer without clipnorm/clipvalue/global_clipnorm")

    def update_clipping(self, update: "Event") -> Clipping | None:
        """What the Keras optimizer of `optimizer.apply_gradients(...)`/`minimize(...)` says about clipping
        (its own clipnorm/clipvalue/global_clipnorm); None when the update is not a Keras optimizer's.
        An optimizer built out of sight (`self.optimizer` in a Keras `train_step` is the one given to
        `compile`) may clip: unknown."""
        call = update.call
        if call is None or type(call.func) is not cst.Attribute or call.func.attr.value not in TF_UPDATES:
            return None
        site = update.site
        made = self.facts.loops.constructor(call.func.value, site.scope, site.seq)
        if made is None:
            return Clipping(None, "optimizer built elsewhere")
        if not (qualified_name(made.func, self.facts.scope_of_call(made)) or "").startswith("keras.optimizers."):
            return None
        return self._keras_clipping(made, site)[1]

    # -- Lightning ---------------------------------------------------------------------------

    def keras_compiles(self) -> list[KerasCompile]:
        """Keras models compiled and fitted: in this file, and in other files of the project that this
        file's calls build and fit (reported here)."""
        return self._keras_compiles + self._project_compiles

    def lightning_fits(self) -> list[LightningFit]:
        return self._lightning_fits

    def hf_trainings(self) -> list[HFTraining]:
        return self._hf_trainings

    @functools.cached_property
    def _lightning_fits(self) -> list[LightningFit]:
        if not self._needs("Trainer", "fit"):
            return []
        result = []
        for site in self._sites({"fit"}):
            call = site.node
            made = self.facts.loops.constructor(call.func.value, site.scope, site.seq)
            if made is None:
                continue
            scope = self.facts.scope_of_call(made)
            qual = qualified_name(made.func, scope) or ""
            if qual not in LIGHTNING_TRAINERS and qual not in LIGHTNING_FROM_ARGS:
                continue
            model_expr = _arg(call, 0, "model")
            model = self.facts.models.model_of(model_expr, site.scope, site.seq) if model_expr is not None else None
            result.append(LightningFit(made, self.facts.site_of(made) or site, model, self._lightning_clipping(made, scope)))
        return result

    def _lightning_clipping(self, trainer: cst.Call, scope: Scope) -> Clipping:
        node = _keyword(trainer, "gradient_clip_val")
        if node is None:
            if any(a.star for a in trainer.args):
                return Clipping(None, "Trainer options passed through *args/**kwargs")
            if type(trainer.func) is cst.Attribute and trainer.func.attr.value == "from_argparse_args":
                # `--gradient_clip_val` may be among the parsed arguments.
                return Clipping(None, "Trainer options parsed from the command line")
            return Clipping(False, "Trainer without gradient_clip_val")
        v = self.facts.values.value(node, scope)
        clips = _positive(v)
        return Clipping(clips, f"gradient_clip_val={self.facts.code(node)}", v)

    # -- Hugging Face ------------------------------------------------------------------------

    @functools.cached_property
    def _hf_trainings(self) -> list[HFTraining]:
        if not self._needs("Trainer"):
            return []
        result = []
        for site in self.facts.index.all_sites:
            call = site.node
            if type(call) is not cst.Call:
                continue
            qual = qualified_name(call.func, site.scope, site.seq) or ""
            if not (qual.startswith("transformers.") or qual.startswith("trl.")) or not qual.endswith(HF_TRAINERS_SUFFIX):
                continue
            model_expr = _keyword(call, "model")
            model = self.facts.models.model_of(model_expr, site.scope, site.seq) if model_expr is not None else None
            args_expr = _keyword(call, "args")
            arguments = None
            if args_expr is not None:
                arguments = self.facts.loops.constructor(args_expr, site.scope, site.seq)
            clipping = self._hf_clipping(arguments)
            result.append(HFTraining(call, site, model, arguments, clipping))
        return result

    def _hf_clipping(self, arguments: cst.Call | None) -> Clipping:
        if arguments is None:
            return Clipping(True, "TrainingArguments default max_grad_norm=1.0")
        qual = qualified_name(arguments.func, self.facts.scope_of_call(arguments)) or ""
        if not qual.endswith(HF_ARGUMENTS_SUFFIX):
            return Clipping(None, "training arguments built elsewhere")
        node = _keyword(arguments, "max_grad_norm")
        if node is None:
            return Clipping(True, "TrainingArguments default max_grad_norm=1.0")
        v = self.facts.values.value(node, self.facts.scope_of_call(arguments))
        clips = _positive(v)
        return Clipping(True if clips is None else clips, f"max_grad_norm={self.facts.code(node)}", v)
