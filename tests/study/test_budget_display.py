"""What `tunefleet preview` and the live console say of a study with ``search.budget``: it runs
until the budget is spent, not for the trial count Ray is given (only the most the budget could
start). Pure: hand-made plans and progress, no training, no Ray."""

from __future__ import annotations

import io
import re
from types import SimpleNamespace

import pytest

from tunefleet.schedulers import Bracket
from tunefleet.spec.budget import BudgetSpec
from tunefleet.study.budget import until_spent
from tunefleet.study.console import ConsoleView, StudyProgress, plain_status
from tunefleet.study.preview import Plan, render_plan


def _plan(budget=None, trials: int = 24, **changes) -> Plan:
    fields = dict(
        name="b", dataset="digits", task="classification", sizes=(1078, 359, 360),
        input_shape=(8, 8, 1), builder="cnn", search="random", trials=trials, grid_size=1,
        space={"learning_rate": "loguniform [0.001, 0.02]"}, scheduler="fifo", max_epochs=2,
        epoch_budget=2, cut_epochs=[], brackets=[], max_total_epochs=trials * 2, executions=1,
        cpu=1.0, gpu=0.0, reuse_processes=False, cluster="embedded local Ray, 2 CPUs, 0 GPUs",
        concurrent=2, objective="val_accuracy (max)", output="/r/b",
        budget=None if budget is None else BudgetSpec(**budget))
    return Plan(**{**fields, **changes})


def _line(text: str, key: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(key)).split(None, 1)[1]


@pytest.mark.parametrize("budget, words", [
    ({"epochs": 24}, "until 24 epochs are spent"),
    ({"epochs": 1}, "until 1 epoch is spent"),
    ({"wall_s": 600}, "until 600 s are spent"),
    ({"wall_s": 0.5}, "until 0.5 s are spent"),
    ({"trials": 12}, "until 12 trials have started"),
    ({"trials": 1}, "until 1 trial has started"),
])
def test_a_budget_says_until_when(budget, words):
    assert until_spent(BudgetSpec(**budget)) == words


def test_preview_says_the_study_runs_until_its_budget_is_spent():
    epochs = render_plan(_plan({"epochs": 24}))
    assert isinstance(epochs, str)
    assert _line(epochs, "Search") == ("random: runs until 24 epochs are spent (search.budget; "
                                       "at most 24 trials)")
    assert _line(epochs, "Epochs") == ("at most 2 per trial, 24 in total (search.budget; trials "
                                       "still reporting when it is spent may add a few)")
    wall = render_plan(_plan({"wall_s": 600}, trials=10_000))
    assert _line(wall, "Search") == "random: runs until 600 s are spent (search.budget)"
    assert _line(wall, "Epochs") == ("at most 2 per trial; in total, as many as 600 s allow "
                                     "(search.budget)")
    assert "10000" not in wall  # the most a budget of seconds lets Ray create: no plan
    # A budget of trials is a trial count: that one is true.
    trials = render_plan(_plan({"trials": 12}, trials=12))
    assert _line(trials, "Search") == "random: 12 trials (search.budget)"
    assert _line(trials, "Epochs") == "at most 2 per trial, 24 in total"
    # Without a budget, as before.
    plain = render_plan(_plan(trials=6, grid_size=3, search="grid"))
    assert _line(plain, "Search") == "grid: 6 trials (grid of 3 × num_samples)"


def test_preview_of_a_budgeted_grid_and_hyperband():
    bracket = Bracket(rungs=(1,), stop=3, budget=3, keep=(1,), size=3, trials=9)
    plan = _plan({"epochs": 12}, trials=12, search="grid", grid_size=10, scheduler="hyperband",
                 brackets=[bracket], cut_epochs=[1])
    text = render_plan(plan)
    assert _line(text, "Search") == (
        "grid: runs until 12 epochs are spent (search.budget; at most 12 trials); grid of 10, "
        "in an order drawn from search.seed (a budget spent first cuts it)")
    assert "num_samples" not in text and "this study's 12 trials" not in text
    assert re.search(r"brackets +filled in this order, 3 trials a round, then again, until the "
                     r"budget is spent:", text)
    assert re.search(r"bracket 1 +3 trials: at epoch 1 the best 1 go on; trained to epoch 3",
                     text)


def _budgeted(budget: dict, spent: float = 0.0) -> StudyProgress:
    progress = StudyProgress("s", "val_accuracy", "max", 2, "/r/s",
                             budget=BudgetSpec(**budget), spent=spent)
    progress.start(24, now=100.0)  # Ray's num_samples under the budget: not a plan
    return progress


def test_the_console_counts_what_is_spent_of_an_epoch_budget():
    progress = _budgeted({"epochs": 24})
    progress.status("a", "running")
    for epoch in (1, 2):  # two executions per epoch: 4 epochs of the budget
        progress.result("a", {"epoch": epoch, "val_accuracy": 0.5, "executions_trained": 2})
    progress.result("b", {"epoch": 1, "stop_reason": "out_of_memory",
                          "executions_trained": 0})  # a failure's row trains nothing
    view = progress.view(now=110.0)
    assert isinstance(view, ConsoleView) and view.planned is None
    assert (view.budget_unit, view.budget_amount, view.budget_spent) == ("epochs", 24.0, 4.0)
    assert isinstance(view.budget_spent, float)
    assert view.eta_s == pytest.approx(50.0)  # 20 epochs to go at 2.5 s each
    line = plain_status(view)
    assert line.startswith("[s 0:10] trials: running 1, pending 1 | budget: 4/24 epochs spent, "
                           "ETA 0:50 | best val_accuracy 0.5000"), line
    assert "24 trials" not in line
    # A resumed study: what it spent before counts, at no time.
    resumed = _budgeted({"epochs": 24}, spent=20)
    resumed.result("c", {"epoch": 1, "val_accuracy": 0.6, "executions_trained": 1})
    view = resumed.view(now=104.0)
    assert view.budget_spent == 21 and view.eta_s == pytest.approx(12.0)


def test_the_console_counts_the_seconds_of_a_time_budget():
    progress = _budgeted({"wall_s": 600}, spent=30)
    progress.result("a", {"epoch": 1, "val_accuracy": 0.5})
    view = progress.view(now=145.0)
    assert view.planned is None and view.budget_spent == pytest.approx(75.0)
    assert view.eta_s == pytest.approx(525.0)
    assert "trials: running 1 | epochs 1; budget: 75/600 s spent, ETA 8:45 |" in \
        plain_status(view)
    # A budget of trials is Ray's trial count: shown as the planned trials, as without one.
    trials = StudyProgress("s", "val_accuracy", "max", 2, "/r/s", budget=BudgetSpec(trials=4))
    trials.start(4, now=0.0)
    view = trials.view(now=1.0)
    assert (view.planned, view.epochs_budget, view.budget_unit) == (4, 8, None)


@pytest.mark.parametrize("budget, spent, header", [
    ({"epochs": 24}, 0.0, "s: runs until 24 epochs are spent (search.budget); "),
    ({"wall_s": 600}, 42.4, ("s: runs until 600 s are spent (search.budget, 42 s spent "
                             "before this run); ")),
    ({"trials": 3}, 0.0, "s: 3 trials (search.budget), up to 6 epochs; "),
    (None, 0.0, "s: 3 trials, up to 6 epochs; "),
])
def test_the_consoles_first_line_says_until_when(budget, spent, header):
    from tunefleet.study.ray_console import study_console

    stream = io.StringIO()
    console = study_console("s", "val_accuracy", "max", 2,
                            SimpleNamespace(location="/r/s", remote=True), live=False,
                            stream=stream, budget=budget and BudgetSpec(**budget), spent=spent)
    console.setup(total_num_samples=3)
    assert stream.getvalue() == header + "a status line every 30 s while it changes\n"
