"""Every example spec passes every check against its data (nothing trains); one whose data is
absent stops with the missing-data message."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunefleet import SpecError
from tunefleet.data.sources import DEBIAN_DATASETS
from tunefleet.study.runner import as_experiment, prepare

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p.name for p in (ROOT / "examples").glob("*.yaml")
                  if "variants" not in p.read_text())  # comparisons: tests/spec/test_yaml.py
FASHION = (DEBIAN_DATASETS / "fashion-mnist").is_dir()


@pytest.fixture(autouse=True)
def _examples_importable(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))  # examples.fashion_mlp, as from the repository root


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_passes_its_checks(name, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # no Keras cache: offline sources
    overrides = [f"output.storage={tmp_path}", "data.download=false"] if name.startswith(
        ("cifar", "fashion")) else [f"output.storage={tmp_path}"]
    experiment = as_experiment(ROOT / "examples" / name, overrides)
    if experiment.data.dataset == "cifar10":
        with pytest.raises(SpecError, match=r"^data\.dataset: dataset 'cifar10' was not found; "
                           r"looked in: Keras' cache .*To get it: "):
            prepare(experiment)
        return
    if experiment.data.dataset == "fashion_mnist" and not FASHION:
        pytest.skip("Debian's dataset-fashion-mnist is not installed (CI installs it)")
    prepared = prepare(experiment)
    assert prepared.info.num_classes or prepared.info.task == "regression"
    if experiment.model.hypermodel:
        conditions = {p.name: dict(p.conditions) for p in prepared.space.params}
        assert conditions["units_2"] == {"num_layers": (3,)}
        assert conditions["dropout_1"] == {"num_layers": (2, 3)}
