"""Adding trials to a finished study (`resume` with a larger search.num_samples) keeps the old
trials untouched and adds new, different ones; search.time_budget_s ends a study cleanly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests import hypermodels
from tests.conftest import tiny_spec
from tunefleet import SpecError, resume, run
from tunefleet.cli import app

pytestmark = pytest.mark.slow


def _trials(study: Path) -> dict[str, dict]:
    """Each trial's params.json and result.json, as bytes, by trial id."""
    return {d.name.removeprefix("trial_"): {"params": (d / "params.json").read_bytes(),
                                            "results": (d / "result.json").read_bytes()}
            for d in sorted(study.glob("trial_*"))}


def _configs(before: dict, after: dict) -> tuple[list[dict], list[dict]]:
    old = [json.loads(after[t]["params"]) for t in before]
    new = [json.loads(after[t]["params"]) for t in after if t not in before]
    return old, new


def _assert_continued(before: dict, after: dict, added: int) -> None:
    assert set(before) <= set(after) and len(after) == len(before) + added
    for trial_id, files in before.items():  # the old trials are untouched, byte for byte
        assert after[trial_id] == files, trial_id
    old, new = _configs(before, after)
    assert all(json.loads(after[t]["results"].splitlines()[-1])["stop_reason"] == "completed"
               for t in after)
    old_seeds = {c["trial_seed"] for c in old}
    new_seeds = [c["trial_seed"] for c in new]
    assert all(isinstance(s, int) for s in new_seeds)
    assert len(set(new_seeds)) == added and not old_seeds & set(new_seeds)
    strip = [{k: v for k, v in c.items() if k != "trial_seed"} for c in old]
    assert not any({k: v for k, v in c.items() if k != "trial_seed"} in strip for c in new)


def test_a_finished_random_study_gains_trials_from_the_cli_and_refuses_fewer(
        ray_local, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = tiny_spec(tmp_path, train={"epochs": 1, "batch_size": 64},
                     search={"algorithm": "random", "num_samples": 2, "seed": 5})
    first = run(spec)
    study = first.path
    before = _trials(study)
    assert len(before) == 2
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))

    out = CliRunner().invoke(app, ["run", "spec.yaml", "--resume", "--no-report",
                                   "--set", "search.num_samples=4"])
    assert out.exit_code == 0, out.output[-3000:]
    after = _trials(study)
    _assert_continued(before, after, added=2)
    summary = json.loads((study / "summary.json").read_text())
    assert summary["trials"]["total"] == 4 and summary["trials"]["completed"] == 4
    assert summary["stopped"] is None
    assert yaml.safe_load((study / "spec.yaml").read_text())["search"]["num_samples"] == 4

    # Fewer trials than the study holds, or another search field: refused, naming the field.
    with pytest.raises(SpecError, match=r"^search\.num_samples: cannot decrease when a study "
                       r"resumes: .* holds 4 and keeps the trials it ran, got 3"):
        resume(study, ["search.num_samples=3"])
    seed = CliRunner().invoke(app, ["resume", str(study), "--set", "search.seed=7"])
    assert seed.exit_code == 2
    assert "--set search.seed: cannot change when a study resumes" in " ".join(
        seed.stderr.split())
    edited = {**spec, "search": {**spec["search"], "num_samples": 6, "seed": 9}}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(edited))
    changed = CliRunner().invoke(app, ["run", "spec.yaml", "--resume", "--no-report"])
    assert changed.exit_code == 2 and "SPEC differs from the spec" in changed.stderr
    assert "in search" in " ".join(changed.stderr.split())

    # The same number again adds nothing, and says so.
    with pytest.warns(UserWarning, match=r"search\.num_samples=4 is what .* already holds"):
        again = resume(study, ["search.num_samples=4"])
    assert _trials(study) == after and len(again.trials) == 4


# A hypermodel study searched by HyperOpt gaining trials: tests/keras_tuner/test_parity.py
# (test_a_recreated_tuner_continues_its_study, through the drop-in BayesianOptimization).


def test_a_time_budget_ends_the_study_and_labels_the_trials_it_cut(
        ray_local, tmp_path, monkeypatch):
    # Every trial needs far longer than the budget (a loaded machine may not even start them).
    monkeypatch.chdir(tmp_path)
    spec = tiny_spec(tmp_path, name="budget", train={"epochs": 300, "batch_size": 16},
                     search={"algorithm": "random", "num_samples": 3, "seed": 1,
                             "time_budget_s": 4})
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    out = CliRunner().invoke(app, ["run", "spec.yaml", "--no-report"])
    spent = "the time budget (search.time_budget_s=4) was spent"
    stderr = " ".join(out.stderr.split())
    assert out.exit_code == 1 and "no trial finished" in stderr, out.output[-3000:]
    assert f"study ended: {spent}" in stderr and "study stopped" not in stderr
    study = tmp_path / "results" / "budget"
    summary = json.loads((study / "summary.json").read_text())
    assert summary["stopped"] == spent
    counts = summary["trials"]
    assert counts["total"] >= 1 and counts["stopped_by_study"] == counts["total"]
    assert counts["failed"] == 0 and counts["errored"] == 0
    # Every trial Ray had created is recorded, started or not; none other is in the study.
    stops = json.loads((study / "stopped_by_study.json").read_text())
    assert set(stops.values()) == {spent}
    assert {d.name.removeprefix("trial_") for d in study.glob("trial_*")} <= set(stops)


def test_a_spent_budget_is_a_planned_end_for_the_cli(tmp_path):
    """`tunefleet run` exits 0 when the budget ended a study in which trials finished, and 1
    when the failure policy stopped it."""
    import pandas as pd
    from typer import Exit

    from tunefleet.cli import _finish
    from tunefleet.study.summary import StudyResult

    trials = pd.DataFrame({"trial_id": ["a", "b"], "status": ["completed", "stopped_by_study"]})
    base = {"name": "s", "trials": {"total": 2, "completed": 1, "stopped_by_study": 1},
            "wall_time_s": 5.0, "epochs_total": 3, "best": None}
    spent = StudyResult(tmp_path, None, None, trials,
                        {**base, "stopped": "the time budget (search.time_budget_s=5) was spent"})
    _finish(spent, report=False)  # no exit: success
    tripped = StudyResult(tmp_path, None, None, trials, {**base, "stopped": "the study stopped "
                          "after 2 consecutive failed trials (failure.max_consecutive=2)"})
    with pytest.raises(Exit) as exc:
        _finish(tripped, report=False)
    assert exc.value.exit_code == 1


def test_random_search_continues_its_random_stream_as_a_larger_study_would(ray_local, tmp_path):
    """Without training: the generator a resume builds, given the saved state of a 2-sample
    study, yields the 3rd and 4th configurations of a 4-sample study with the same seed."""
    import ray.cloudpickle as cloudpickle
    from ray.tune import Experiment as RayExperiment
    from ray.tune.search.basic_variant import BasicVariantGenerator

    from tunefleet import Experiment
    from tunefleet.search_spaces import to_ray_space
    from tunefleet.search_spaces.continuation import continued

    space = to_ray_space(Experiment.from_dict(tiny_spec(tmp_path)))

    def configs(generator, num_samples: int, draws: int) -> list[dict]:
        if num_samples:
            generator.add_configurations(RayExperiment("s", run=lambda config: None,
                                                       config=space, num_samples=num_samples))
        return [generator.next_trial().config for _ in range(draws)]

    small = BasicVariantGenerator(random_state=5)
    old = configs(small, 2, 2)
    assert small.next_trial() is None and small.is_finished()
    state = cloudpickle.loads(cloudpickle.dumps(small.get_state()))
    more = continued(BasicVariantGenerator(random_state=5), 4, reopen=False)
    more.set_state(state)
    assert more.total_samples == 4 and not more.is_finished()
    new = configs(more, 0, 2)
    assert more.next_trial() is None
    assert new == configs(BasicVariantGenerator(random_state=5), 4, 4)[2:]
    assert not any(c in old for c in new)


@pytest.fixture(scope="module")
def grid_space():
    """grid_mlp's space (written without an Input, so discovery makes no weights), discovered
    once for both searchers."""
    from tunefleet.search_spaces.hypermodel_space import discover_space
    from tunefleet.trainables.hypermodel import probe_hypermodel, resolve_hypermodel

    hm = resolve_hypermodel(hypermodels.grid_mlp_guide)
    return discover_space(lambda values: probe_hypermodel(hm, values))


@pytest.mark.parametrize("algorithm", ["grid", "random"])
def test_a_restored_hypermodel_searcher_with_more_repeats_suggests_new_trials(
        algorithm, grid_space, tmp_path):
    """Without training: the hypermodel searcher a resume builds (for 2 repetitions), given the
    saved state of one that ran 1, repeats the grid once more (random: draws new samples) with
    new trial seeds, then finishes."""
    from ray.tune.search import Searcher

    from tunefleet.search_spaces.conditional import make_conditional_searcher

    space = grid_space
    size = space.grid_size()

    def searcher(repeats: int):
        return make_conditional_searcher(space, algorithm, metric="val_accuracy", mode="max",
                                         seed=3, repeats=repeats)

    first = searcher(1)
    old = [first.suggest(f"a{i}") for i in range(size)]
    first.save(str(tmp_path / "state.pkl"))
    more = searcher(2)
    more.restore(str(tmp_path / "state.pkl"))
    new = [more.suggest(f"b{i}") for i in range(size)]
    assert all(isinstance(c, dict) for c in new)
    strip = [{k: v for k, v in c.items() if k != "trial_seed"} for c in [*old, *new]]
    if algorithm == "grid":
        assert strip[size:] == strip[:size]  # the grid, repeated
        assert more.suggest("c") == Searcher.FINISHED
    assert not {c["trial_seed"] for c in old} & {c["trial_seed"] for c in new}
    assert new != [searcher(2).suggest(f"d{i}") for i in range(size)]  # not a fresh start
