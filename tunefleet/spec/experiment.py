"""`Experiment`: the validated, immutable description of a study; the single source of truth."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional

from pydantic import Field, ValidationError, field_validator, model_validator

from .base import StrictModel
from .budget import check_budget
from .errors import SpecError
from .methods import check_methods
from .population import check_population
from .sections import (
    ClusterSpec, DataSpec, FailureSpec, FifoSpec, ModelSpec,
    ObjectiveSpec, OutputSpec, ResourcesSpec, SchedulerSpec, SearchSpec, TrainSpec,
    RandomSearchSpec, TRIAL_SEED_KEY, TUNABLE_TRAIN_FIELDS,
)
from .space import CONTINUOUS, DISTRIBUTIONS, Choice, Entry, Fixed, Grid, entry_values

__all__ = ["Experiment"]

# Training options that go into compile(); a hypermodel compiles its own model.
_COMPILED_BY_HYPERMODEL = ("optimizer", "learning_rate", "momentum", "nesterov", "weight_decay",
                           "metrics", "steps_per_execution")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class Experiment(StrictModel):
    """A whole study: data, model, training, search space, searcher, scheduler, objective,
    resources, cluster and output. Build it with :meth:`from_yaml` or :meth:`from_dict` to get
    :class:`SpecError` messages that name the field, the value and the fix."""

    name: str
    data: DataSpec = Field(default_factory=DataSpec)
    model: ModelSpec = Field(default_factory=ModelSpec)
    train: TrainSpec = Field(default_factory=TrainSpec)
    search_space: dict[str, Entry] = Field(default_factory=dict)
    search: SearchSpec = Field(default_factory=lambda: RandomSearchSpec(algorithm="random"))
    scheduler: SchedulerSpec = Field(default_factory=lambda: FifoSpec(name="fifo"))
    objective: ObjectiveSpec = Field(default_factory=ObjectiveSpec)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    cluster: ClusterSpec = Field(default_factory=ClusterSpec)
    output: OutputSpec = Field(default_factory=OutputSpec)
    failure: FailureSpec = Field(default_factory=FailureSpec)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(
                f"name becomes a directory name, got {value!r}; use letters, digits, '_', '.', '-'"
            )
        return value

    @field_validator("search_space", mode="before")
    @classmethod
    def _wrap_fixed(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        wrapped = {}
        for key, entry in value.items():
            if key == TRIAL_SEED_KEY:
                raise ValueError("'trial_seed' is reserved: tunefleet derives each trial's seed "
                                 "from search.seed; set search.seed instead")
            if isinstance(entry, dict):
                if "type" not in entry:
                    raise ValueError(
                        f"entry '{key}' is a mapping without 'type'; give one of "
                        f"{', '.join(DISTRIBUTIONS)} (e.g. {{type: loguniform, low: 1e-4, "
                        "high: 1e-2}), or write a fixed value as the value itself"
                    )
                wrapped[key] = entry
            elif isinstance(entry, (Fixed, Choice, Grid)) or hasattr(entry, "type"):
                wrapped[key] = entry
            else:
                wrapped[key] = {"type": "fixed", "value": entry}
        return wrapped

    @model_validator(mode="after")
    def _tuned_training_values(self) -> "Experiment":
        """Every value a tuned training option can take must be valid for ``train``."""
        for key, entry in self.search_space.items():
            if key not in TUNABLE_TRAIN_FIELDS:
                continue
            if key in ("epochs", "batch_size") and entry.type in CONTINUOUS:
                raise ValueError(f"search_space.{key}: {key} is a whole number, got a "
                                 f"{entry.type} distribution; use choice, grid, randint or qrandint")
            for value in entry_values(entry):
                try:
                    TrainSpec.model_validate({key: value})
                except ValidationError as exc:
                    problem = exc.errors()[0]["msg"].removeprefix("Value error, ")
                    raise ValueError(f"search_space.{key}: {value!r} is not a valid train.{key} "
                                     f"({problem[0].lower()}{problem[1:]})") from None
        return self

    @model_validator(mode="after")
    def _cross_checks(self) -> "Experiment":
        grid_keys = [k for k, e in self.search_space.items() if e.type == "grid"]
        algorithm = self.search.algorithm
        if algorithm == "hyperopt" and grid_keys:
            raise ValueError(
                f"search_space.{grid_keys[0]}: a grid entry cannot be used with "
                "search.algorithm=hyperopt (TPE samples, it does not enumerate); "
                "use type: choice, or search.algorithm: grid"
            )
        if algorithm == "grid":
            for key, entry in self.search_space.items():
                if entry.type not in ("grid", "choice", "fixed"):
                    raise ValueError(
                        f"search_space.{key}: grid search cannot enumerate a {entry.type} "
                        "distribution; list the values with type: grid, or use "
                        "search.algorithm: random or hyperopt"
                    )
        if self.scheduler.name == "hyperband" and self.output.checkpoint_every not in (1, "auto"):
            raise ValueError(
                f"output.checkpoint_every: HyperBand pauses trials at rung boundaries and resumes "
                f"them from their last checkpoint, got checkpoint_every="
                f"{self.output.checkpoint_every}; use auto (or 1) so that no epochs are lost or "
                "repeated")
        if self.scheduler.name == "hyperband" and self.search.max_concurrent is not None:
            raise ValueError(
                "search.max_concurrent: synchronous HyperBand must create every trial of a "
                "bracket up front, and a limit here would leave its brackets unfilled so that "
                "nothing is cut; remove it (resources still limit how many trials run at once) "
                "or use scheduler asha"
            )
        if self.model.hypermodel:
            self._check_hypermodel()
        self._check_points()
        check_methods(self)  # optuna and bohb (spec/methods.py)
        check_population(self)  # pbt and pb2: what may mutate (spec/population.py)
        check_budget(self.search, hypermodel=bool(self.model.hypermodel))
        distribute = self.train.distribute
        if distribute is not None and distribute.cpu_devices is None and self.resources.gpu < 2:
            raise ValueError(
                f"train.distribute: mirrored spreads one trial over its GPUs and needs "
                f"resources.gpu >= 2, got gpu={self.resources.gpu:g}; give each trial 2 or more "
                "GPUs, or set train.distribute.cpu_devices to try it on CPU")
        budget = self.epoch_budget
        grace = getattr(self.scheduler, "grace_period", None)
        if grace is not None and grace > budget:
            raise ValueError(
                f"scheduler.grace_period: {grace} is larger than the epoch budget ({budget}, "
                "from scheduler.max_t or train.epochs), so no trial could ever be stopped early; "
                f"use a grace_period of at most {budget}"
            )
        max_t = getattr(self.scheduler, "max_t", None)
        if max_t is not None and max_t > self.max_epochs:
            raise ValueError(
                f"scheduler.max_t: {max_t} is more than the most epochs any trial trains "
                f"({self.max_epochs}); raise train.epochs or lower max_t"
            )
        return self

    def _check_points(self) -> None:
        """``search.points_to_evaluate``: each point gives every tuned hyperparameter of
        ``search_space`` a value it can take, and nothing else."""
        points = getattr(self.search, "points_to_evaluate", None) or []
        if points and self.model.hypermodel:
            raise ValueError(
                "search.points_to_evaluate: not supported with model.hypermodel (its space is "
                "discovered from the hypermodel); fix the values in the hypermodel's "
                "HyperParameters instead, or remove points_to_evaluate")
        tuned = {k: e for k, e in self.search_space.items() if e.type != "fixed"}
        for i, point in enumerate(points):
            where = f"search.points_to_evaluate[{i}]"
            unknown = sorted(set(point) - set(self.search_space))
            if unknown:
                raise ValueError(f"{where}.{unknown[0]}: not in search_space (it has "
                                 f"{', '.join(self.search_space) or 'nothing'}); remove it")
            missing = sorted(set(tuned) - set(point))
            if missing:
                raise ValueError(f"{where}: gives no value for {', '.join(missing)}; give "
                                 "every tuned hyperparameter of search_space a value")
            for key, value in point.items():
                entry = self.search_space[key]
                problem = _outside(entry, value)
                if problem:
                    raise ValueError(f"{where}.{key}: {value!r} {problem}")

    def _check_hypermodel(self) -> None:
        if self.search_space:
            key = next(iter(self.search_space))
            raise ValueError(
                f"search_space.{key}: a hypermodel declares its own search space with hp.Int, "
                "hp.Choice, ...; remove search_space (tune fit arguments such as batch_size in "
                "HyperModel.fit with hp.Choice)")
        compiled = sorted(self.train.model_fields_set & set(_COMPILED_BY_HYPERMODEL))
        if compiled:
            raise ValueError(
                f"train.{compiled[0]}: the hypermodel compiles its own model, so tunefleet's "
                f"{', '.join(compiled)} would be ignored; set them in build_model's "
                "model.compile(...) instead")

    # -- derived facts every component reads -------------------------------------------

    @property
    def max_epochs(self) -> int:
        """The most epochs any trial can train: train.epochs, or the top of a tuned range."""
        entry = self.search_space.get("epochs")
        if entry is None:
            return self.train.epochs
        return int(max(entry_values(entry)))

    @property
    def epoch_budget(self) -> int:
        """The scheduler's time budget in epochs (max_t defaults to the most epochs)."""
        return getattr(self.scheduler, "max_t", None) or self.max_epochs

    def to_dict(self) -> dict[str, Any]:
        """Plain data, with fixed search-space values written back as bare values."""
        data = self.model_dump(mode="json")
        if self.model.hypermodel:
            # Round-trips exactly: which train fields were set matters to a hypermodel (an unset
            # batch_size is left to its fit), and builder/params do not apply.
            data["model"] = {"hypermodel": self.model.hypermodel}
            data["train"] = self.train.model_dump(mode="json", exclude_unset=True)
        data["search_space"] = {
            k: (v["value"] if v["type"] == "fixed" else v) for k, v in data["search_space"].items()
        }
        budget = data["search"].get("budget")
        if budget is not None:  # one unit, as written; num_samples comes from it
            data["search"]["budget"] = {k: v for k, v in budget.items() if v is not None}
            data["search"].pop("num_samples", None)
        return data

    # -- construction with readable errors ----------------------------------------------

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Experiment":
        """Validate plain data (as parsed from YAML); raise SpecError naming every bad field."""
        if not isinstance(data, dict):
            raise SpecError("spec", "must be a mapping of sections (name, data, model, ...)",
                            type(data).__name__)
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise SpecError.many(format_validation_error(exc)) from None

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: Optional[list[str]] = None) -> "Experiment":
        """Read a YAML spec, apply ``key.path=value`` overrides, validate."""
        from .yaml_io import apply_overrides, load_yaml

        data = load_yaml(path)
        if overrides:
            data = apply_overrides(data, overrides)
        return cls.from_dict(data)


def _key(key: Any) -> str:
    """A key as it reads in a field path; quoted when it is empty or has spaces or odd characters."""
    text = str(key)
    return text if re.fullmatch(r"[^\s'\"]+", text) else repr(text)


def _loc(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for i, item in enumerate(loc):
        # Pydantic inserts the chosen union branch (search.<algorithm>, scheduler.<name>,
        # search_space.<key>.<type>): bookkeeping, not a spec key.
        if (i == 1 and loc[0] in ("search", "scheduler")) or (i == 2 and loc[0] == "search_space"):
            continue
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + _key(item))
    return "".join(parts)


def format_validation_error(exc: ValidationError) -> list[str]:
    """One line per problem: ``field.path: message, got value``."""
    lines: list[str] = []
    for err in exc.errors():
        field = _loc(err["loc"])
        kind = err["type"]
        msg = err["msg"]
        if kind == "value_error":
            msg = msg.removeprefix("Value error, ")
            unknown = re.match(r"unknown key '(.*?)'; (.*)", msg, re.S)
            if unknown:  # point at the key itself: train.learning_rte
                key = _key(unknown.group(1))
                field = f"{field}.{key}" if field else key
                msg = f"unknown key; {unknown.group(2)}"
            line = f"{field}: {msg}" if field else msg
        elif kind == "union_tag_invalid":
            from .base import suggest

            ctx = err["ctx"]
            tags = ctx["expected_tags"].replace("'", "").split(", ")
            line = (
                f"{field}.{ctx['discriminator'].strip(chr(39))}: unknown value "
                f"'{ctx['tag']}'; {suggest(ctx['tag'], tags)}valid: {', '.join(tags)}"
            )
        elif kind == "union_tag_not_found":
            line = f"{field}: missing '{err['ctx']['discriminator'].strip(chr(39))}'"
        elif kind == "missing":
            line = f"{field}: required field is missing"
        elif not field:
            line = f"{msg[0].lower()}{msg[1:]}, got {err.get('input')!r}"
        elif kind == "literal_error":
            from .base import suggest

            expected = re.findall(r"'([^']*)'", msg)
            line = f"{field}: {suggest(err['input'], expected)}{msg[0].lower()}{msg[1:]}, got {err['input']!r}"
        else:
            line = f"{field}: {msg[0].lower()}{msg[1:]}, got {err.get('input')!r}"
        lines.append(line)
    return lines


def _outside(entry: Any, value: Any) -> str:
    """Why ``value`` is not one ``entry`` can take ('' if it is)."""
    kind = entry.type
    if kind == "fixed":
        return "" if value == entry.value else f"differs from the fixed value {entry.value!r}"
    if kind in ("choice", "grid"):
        return "" if value in entry.values else f"is not one of {list(entry.values)}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"is not a number in [{entry.low}, {entry.high}]"
    if kind in ("randint", "qrandint") and not float(value).is_integer():
        return f"is not an integer ({kind})"
    high_ok = value < entry.high if kind == "randint" else value <= entry.high
    if not entry.low <= value or not high_ok:
        bounds = f"[{entry.low}, {entry.high})" if kind == "randint" else \
            f"[{entry.low}, {entry.high}]"
        return f"is outside {kind} {bounds}"
    return ""
