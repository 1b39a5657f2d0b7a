"""`tunefleet preview`: what a spec will do, computed without training (and without Ray, but
for a spec whose ``cluster.address`` names a cluster: it is asked what it has and can grow to)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

from ..cluster import ClusterInfo, concurrent_trials, connect, disconnect, planned_concurrency
from .budget import until_spent
from .runner import prepare
from ..schedulers import Bracket, brackets, cut_epochs
from ..schedulers.population import describe_population
from ..search_spaces import describe_entry, grid_size
from ..spec import Experiment
from ..spec.budget import BudgetSpec
from ..spec.methods import PAUSING_SCHEDULERS
from ..storage import experiment_storage

__all__ = ["Plan", "collect_plan", "render_plan"]


@dataclass(frozen=True)
class Plan:
    """The numbers a user checks before spending compute."""

    name: str
    dataset: str
    task: str
    sizes: tuple[int, int, int]
    input_shape: tuple[int, ...]
    builder: str
    search: str
    trials: int  # under a search.budget of epochs or seconds: the most it can start
    grid_size: int
    space: dict[str, str]
    scheduler: str
    max_epochs: int
    epoch_budget: int
    cut_epochs: list[int]
    brackets: list[Bracket]  # ASHA's or HyperBand's, as Ray's scheduler builds them
    max_total_epochs: int
    executions: int
    cpu: float
    gpu: float
    reuse_processes: bool
    cluster: str
    concurrent: int | None
    objective: str
    output: str
    time_budget_s: float | None = None
    speed: str = ""  # steps per execution, mixed precision, XLA, Keras backend
    full_size: str | None = None  # on an autoscaling cluster: trials at once at full size
    population: str = ""  # PBT/PB2: what the population does, read from Ray's scheduler
    budget: Optional[BudgetSpec] = None  # search.budget: the study runs until it is spent


def _speed(experiment: Experiment, hypermodel: bool) -> str:
    """Steps per execution, precision, XLA and the Keras backend, as the trials will set
    them."""
    train = experiment.train
    jax = train.backend == "jax"
    if hypermodel:
        steps = "steps per execution as the hypermodel compiles"
    elif train.distribute is not None and not jax:
        steps = "1 step per execution (Keras' multi-step loop fails under train.distribute)"
    else:
        steps = f"{train.steps_per_execution} steps per execution"
    if train.jit_compile == "auto":
        xla = ("as the hypermodel compiles" if hypermodel
               else "on (Keras' choice on JAX)" if jax else "Keras' choice (on with a GPU)")
    else:
        xla = "on" if train.jit_compile else "off" + (" (JAX runs eagerly, slowly)" if jax else "")
    return (f"{steps}; {train.mixed_precision or 'float32'}; XLA {xla}; "
            f"Keras backend {train.backend}")


def collect_plan(experiment: Experiment) -> Plan:
    """Validate ``experiment`` against its data and compute the plan."""
    prepared = prepare(experiment)
    dataset = prepared.dataset
    training = dataset.training
    trials = prepared.total_trials(experiment)
    concurrent, full_size = None, None
    cluster = experiment.cluster.address
    if cluster == "local":
        cpus = experiment.cluster.num_cpus or os.cpu_count() or 1
        gpus = experiment.cluster.num_gpus or 0
        concurrent = min(trials, concurrent_trials(experiment, cpus, gpus))
        cluster = f"embedded local Ray, {cpus} CPUs, {gpus} GPUs"
    else:
        cluster, concurrent, full_size = _cluster_plan(experiment, trials)
    return Plan(
        name=experiment.name, dataset=training.info.name, task=training.info.task,
        sizes=(len(training.y_train), len(training.y_val), len(dataset.y_test)),
        input_shape=training.info.input_shape,
        builder=(f"hypermodel {experiment.model.hypermodel}" if prepared.space is not None
                 else experiment.model.builder),
        search=experiment.search.algorithm, trials=trials,
        grid_size=(prepared.space.grid_size() if prepared.space is not None
                   and experiment.search.algorithm == "grid" else grid_size(experiment)),
        space=(_describe_space(prepared.space) if prepared.space is not None
               else {k: describe_entry(v) for k, v in experiment.search_space.items()}),
        scheduler=experiment.scheduler.name, max_epochs=experiment.max_epochs,
        epoch_budget=experiment.epoch_budget, cut_epochs=cut_epochs(experiment),
        brackets=brackets(experiment, trials),
        max_total_epochs=(trials * experiment.search.executions_per_trial
                          * min(experiment.max_epochs, experiment.epoch_budget)),
        executions=experiment.search.executions_per_trial, cpu=experiment.resources.cpu,
        gpu=experiment.resources.gpu, reuse_processes=experiment.resources.reuse,
        cluster=cluster, concurrent=concurrent,
        objective=f"{experiment.objective.metric} ({experiment.objective.mode})",
        time_budget_s=experiment.search.time_budget_s,
        output=experiment_storage(experiment).location, speed=_speed(experiment, prepared.space is not None),
        full_size=full_size, population=describe_population(experiment, trials, concurrent),
        budget=experiment.search.budget,
    )


def _cluster_plan(experiment: Experiment, trials: int) -> tuple[str, int | None, str | None]:
    """(the cluster now, trials at once now, trials at once at full size) of the cluster
    ``cluster.address`` names: joined, read, and left."""
    from ..spec import SpecError

    try:
        info = connect(experiment)
    except SpecError as exc:
        where = f"cluster {experiment.cluster.address}, not reachable from here: {exc.problem}"
        return where, None, None
    try:
        now = (f"cluster {info.address} now: {info.nodes} node(s), {info.cpus:g} CPUs, "
               f"{info.gpus:g} GPUs")
        res = experiment.resources
        # None fits now unless one node can hold a trial.
        fits = min(trials, concurrent_trials(experiment, info.cpus, info.gpus)) \
            if info.node_cpus >= res.cpu and info.node_gpus >= res.gpu else 0
        return now, fits, _full_size(experiment, info, trials)
    finally:
        disconnect(info)


def _full_size(experiment: Experiment, info: ClusterInfo, trials: int) -> str | None:
    """What the autoscaler can grow the cluster to, and the trials at once there."""
    scaler = info.autoscaler
    if scaler is None:
        return None
    full = info.full_size()
    if full is None:
        return f"the cluster can grow ({scaler.source}); by how much is unknown here"
    cpus, gpus, nodes = full
    at_once = min(trials, planned_concurrency(experiment, info))
    return (f"{at_once} at once at full size: {nodes} nodes, {cpus:g} CPUs, {gpus:g} GPUs "
            f"({scaler.describe()})")


def _describe_space(space) -> dict[str, str]:
    """A hypermodel's discovered hyperparameters, with the conditions they exist under."""
    out = {}
    for p in space.params:
        d = p.describe()
        if p.kind in ("choice", "boolean"):
            text = f"{p.kind} {list(p.values)}"
        elif p.kind == "fixed":
            text = repr(p.hp.value)
        else:
            step = f" step {d['step']}" if d.get("step") else ""
            text = f"{p.kind} [{d['min_value']}, {d['max_value']}]{step} {d['sampling']}"
        for parent, values in p.conditions:
            text += f"  if {parent} in {list(values)}"
        out[p.name] = text
    return out


def _open_ended(plan: Plan) -> bool:
    """Whether the study's trial count is not known in advance: a search.budget of epochs or
    seconds ends it, however many trials that is."""
    return plan.budget is not None and plan.budget.unit != "trials"


def _bracket_lines(plan: Plan) -> list[tuple[str, str]]:
    """HyperBand's brackets in the order Ray fills them; ASHA's when it has several."""
    if plan.scheduler in PAUSING_SCHEDULERS:  # HyperBand, BOHB's HyperBand (largest first)
        per_round = sum(b.size or 0 for b in plan.brackets)
        if _open_ended(plan):  # how many trials land where depends on when the budget ends
            head = (f"filled in this order, {per_round} trials a round, then again, until the "
                    "budget is spent:")
            return [("  brackets", head)] + [
                (f"  bracket {i}", f"{b.size} trials: {_halving(b)}")
                for i, b in enumerate(plan.brackets, 1)]
        head = (f"filled in this order, {per_round} trials a round, then again; "
                f"where this study's {plan.trials} trials land:")
        return [("  brackets", head)] + [
            (f"  bracket {i}", f"{b.trials} of {b.size} trials: {_halving(b)}")
            for i, b in enumerate(plan.brackets, 1)]
    if len(plan.brackets) > 1:
        head = "each trial joins one at random (more rungs, more likely)"
        return [("  brackets", head)] + [
            (f"  bracket {i}", "rungs at epochs " + ", ".join(map(str, b.rungs)))
            for i, b in enumerate(plan.brackets, 1)]
    return []


def _halving(b: Bracket) -> str:
    """``at epoch 1 the best 3 go on, at epoch 3 the best 1; stopped at epoch 9``."""
    steps = ", ".join(f"at epoch {r} the best {k}" + (" go on" if i == 0 else "")
                      for i, (r, k) in enumerate(zip(b.rungs, b.keep, strict=True)))
    end = (f"stopped at epoch {b.stop}, below the budget" if b.stop < b.budget
           else f"trained to epoch {b.stop}")
    return f"{steps}; {end}" if steps else f"no cut, {end}"


def _search_line(plan: Plan) -> str:
    """The searcher and how many trials it runs: a count, or under a search.budget of epochs
    or seconds, until when (the trial count it allows is only an upper bound)."""
    executions = (f", each trained {plan.executions} times (executions_per_trial)"
                  if plan.executions > 1 else "")
    if plan.budget is None:
        grid = f" (grid of {plan.grid_size} × num_samples)" if plan.grid_size > 1 else ""
        trials = f"{plan.trials} trials{grid}"
    else:
        grid = (f"; grid of {plan.grid_size}, in an order drawn from search.seed (a budget "
                "spent first cuts it)" if plan.grid_size > 1 else "")
        trials = (f"{plan.trials} trials (search.budget){grid}" if not _open_ended(plan) else
                  f"runs {until_spent(plan.budget)} (search.budget"
                  + (f"; at most {plan.trials} trials" if plan.budget.unit == "epochs" else "")
                  + f"){grid}")
    timed = (f"; ends after {plan.time_budget_s:g} s (search.time_budget_s)"
             if plan.time_budget_s else "")
    return f"{plan.search}: {trials}{executions}{timed}"


def _epochs_line(plan: Plan) -> str:
    per_trial = f"at most {plan.max_epochs} per trial"
    if plan.budget is not None and plan.budget.unit == "epochs":
        return (f"{per_trial}, {plan.budget.amount:g} in total (search.budget; trials still "
                "reporting when it is spent may add a few)")
    if plan.budget is not None and plan.budget.unit == "wall_s":
        return f"{per_trial}; in total, as many as {plan.budget.amount:g} s allow (search.budget)"
    return f"{per_trial}, {plan.max_total_epochs} in total"


def render_plan(plan: Plan) -> str:
    """The plan as aligned text lines."""
    train, val, test = plan.sizes
    cuts = (("may pause or stop" if plan.scheduler in PAUSING_SCHEDULERS else "may stop")
            + " trials at epochs " + ", ".join(map(str, plan.cut_epochs)) if plan.cut_epochs
            else "stops no trial early (every trial trains its full budget)")
    at_once = (f"{plan.concurrent} at once on {plan.cluster}" if plan.concurrent is not None
               else f"trials at once unknown ({plan.cluster})" if "not reachable" in plan.cluster
               else f"as many at once as {plan.cluster}'s free resources allow")
    if plan.full_size:
        at_once += f"; {plan.full_size}"
    lines = [
        ("Experiment", plan.name),
        ("Data", (f"{plan.dataset} ({plan.task}): {train} train / {val} validation / {test} "
                  f"test, input {plan.input_shape}")),
        ("Model", plan.builder),
        ("Search", _search_line(plan)),
        *(("  " + k, v) for k, v in plan.space.items()),
        ("Scheduler", f"{plan.scheduler}: epoch budget {plan.epoch_budget}; {cuts}"),
        *_bracket_lines(plan),
        *([("  population", plan.population)] if plan.population else []),
        ("Epochs", _epochs_line(plan)),
        ("Training", plan.speed),
        ("Resources", (f"{plan.cpu:g} CPU, {plan.gpu:g} GPU per trial; {at_once}; "
                       f"{'warm reused' if plan.reuse_processes else 'a fresh'} trial processes")),
        ("Objective", plan.objective),
        ("Output", plan.output),
    ]
    width = max(len(k) for k, _ in lines)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in lines)
