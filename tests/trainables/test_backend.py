"""train.backend: tensorflow | jax. Each trial process sets its backend (and JAX's memory
settings) before it imports Keras, and refuses to train on another; a JAX study trains, its
distributed trials use keras.distribution.DataParallel, and the report restores its best
model in the driver on TensorFlow; mixed_float16 works with train.distribute on both."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import pickle
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, tiny_spec
from tunefleet import SpecError
from tunefleet.cluster import devices
from tunefleet.cluster.devices import (BACKENDS, BackendMismatch, backend_environment,
                                       select_backend)
from tunefleet.spec.sections import KERAS_BACKENDS
from tunefleet.study.runner import as_experiment, prepare
from tunefleet.data import DataInfo, TrainingData
from tunefleet.trainables.fit_contract import fit_call
from tunefleet.trainables.keras_trainable import (Shipped, _backend_refusal, _divisible, _unship,
                                                  ship)
from tunefleet.trainables.keras_tuner_fit import whole_replicas
from tunefleet.trainables.status import STOP_REASONS, trial_status

HAS_JAX = importlib.util.find_spec("jax") is not None
needs_jax = pytest.mark.skipif(
    not HAS_JAX, reason="JAX is not installed: pip install 'tunefleet[jax]' (the test extra "
                        "includes it)")
# The variables backend_environment may set; tests that set them put them back.
_JAX_ENV = ("KERAS_BACKEND", "XLA_PYTHON_CLIENT_PREALLOCATE", "XLA_PYTHON_CLIENT_MEM_FRACTION",
            "XLA_FLAGS", "TF_FORCE_GPU_ALLOW_GROWTH")


@pytest.fixture
def clean_env(monkeypatch):
    """The backend variables unset here, and put back as they were afterwards, also those the
    code under test sets (monkeypatch.delenv records nothing for an unset variable)."""
    saved = {key: os.environ.pop(key, None) for key in _JAX_ENV}
    yield monkeypatch
    monkeypatch.undo()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.mark.parametrize("backend, share, expected", [
    ("tensorflow", 0.5, {"KERAS_BACKEND": "tensorflow"}),
    ("jax", 0.0, {"KERAS_BACKEND": "jax", "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
                  "TF_FORCE_GPU_ALLOW_GROWTH": "true"}),
    ("jax", 0.5, {"KERAS_BACKEND": "jax", "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
                  "TF_FORCE_GPU_ALLOW_GROWTH": "true", "XLA_PYTHON_CLIENT_MEM_FRACTION": "0.450"}),
    ("jax", 0.25, {"KERAS_BACKEND": "jax", "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
                   "TF_FORCE_GPU_ALLOW_GROWTH": "true",
                   "XLA_PYTHON_CLIENT_MEM_FRACTION": "0.225"}),
    # Whole GPUs: 90 % of each, not JAX's default 75 %.
    ("jax", 2.0, {"KERAS_BACKEND": "jax", "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
                  "TF_FORCE_GPU_ALLOW_GROWTH": "true", "XLA_PYTHON_CLIENT_MEM_FRACTION": "0.900"}),
])
def test_backend_environment_is_the_backend_and_jax_memory_for_the_share(
        clean_env, backend, share, expected):
    env = backend_environment(backend, share)
    assert env == expected
    assert all(isinstance(v, str) for v in env.values())
    # The fraction is the share with TensorFlow's headroom (its memory limit: the same 90 %).
    if "XLA_PYTHON_CLIENT_MEM_FRACTION" in env:
        assert math.isclose(float(env["XLA_PYTHON_CLIENT_MEM_FRACTION"]),
                            min(share, 1) * devices._SHARE_HEADROOM, abs_tol=1e-3)
    assert "KERAS_BACKEND" not in os.environ  # computed, not set


def test_cpu_devices_become_xla_host_devices_kept_beside_other_flags(clean_env):
    clean_env.setenv("XLA_FLAGS", "--xla_cpu_enable_fast_math=false "
                                  "--xla_force_host_platform_device_count=8")
    env = backend_environment("jax", 0.0, cpu_devices=2)
    assert env["XLA_FLAGS"] == ("--xla_cpu_enable_fast_math=false "
                                "--xla_force_host_platform_device_count=2")
    assert "XLA_FLAGS" not in backend_environment("tensorflow", 0.0, cpu_devices=2)


def test_an_unknown_backend_lists_the_valid_ones():
    assert BACKENDS == KERAS_BACKENDS == ("tensorflow", "jax")
    with pytest.raises(ValueError, match=r"unknown Keras backend 'torch'; valid: tensorflow, jax"):
        backend_environment("torch", 0.0)


def test_a_trial_refuses_to_train_on_the_backend_keras_was_imported_with(clean_env):
    import keras

    assert keras.backend.backend() == "tensorflow"  # this test process's, as the driver's
    with pytest.raises(BackendMismatch, match=r"train\.backend is 'jax', but Keras was already "
                                              r"imported in this trial process with the "
                                              r"'tensorflow' backend"):
        select_backend("jax", 0.5)
    assert all(k not in os.environ for k in _JAX_ENV)  # nothing set on the way
    env = select_backend("tensorflow", 0.5)
    assert env == {"KERAS_BACKEND": "tensorflow"} and os.environ["KERAS_BACKEND"] == "tensorflow"


def test_a_fresh_trial_process_gets_the_variables_before_keras(clean_env):
    """As in a trial process that has not imported Keras: every variable is set; with
    gpu_memory: growth a JAX trial may grow to 90 % of the GPU, as TensorFlow's grows."""
    clean_env.delitem(sys.modules, "keras", raising=False)
    env = select_backend("jax", 0.5, "growth", cpu_devices=2)
    assert {k: os.environ[k] for k in env} == env
    assert os.environ["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.900"
    assert os.environ["XLA_FLAGS"].endswith("--xla_force_host_platform_device_count=2")
    assert select_backend("jax", 0.5, "limit")["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.450"


def test_a_backend_that_is_not_installed_is_refused_before_ray_starts(tmp_path, clean_env):
    clean_env.setitem(devices._BACKEND_MODULES, "jax", "no_such_module_for_tunefleet")
    experiment = as_experiment(tiny_spec(tmp_path, train={"epochs": 1, "backend": "jax"}))
    with pytest.raises(SpecError, match=r"^train\.backend: needs the 'no_such_module_for_tunefleet'"
                                        r" package, which this Python environment .* lacks, got "
                                        r"'jax'\. Install it with pip install 'tunefleet\[jax\]'"):
        prepare(experiment)
    # In a trial (a node of a cluster whose driver has it): an error that says the same.
    clean_env.delitem(sys.modules, "keras", raising=False)
    with pytest.raises(ModuleNotFoundError, match=r"train\.backend: jax needs .* on every node"):
        select_backend("jax", 0.0)


def test_a_backend_a_trial_cannot_choose_is_its_failure_reason(tmp_path, clean_env):
    """What train_trial reports as the reason of a failed_trial (failed, not retried): Keras
    already imported with another backend, or the backend's package missing on the node."""
    import keras

    assert keras.backend.backend() == "tensorflow"
    jax_study = as_experiment(tiny_spec(tmp_path, train={"backend": "jax"}))
    # Counted as installed (json is, everywhere), so that the mismatch is what refuses it.
    clean_env.setitem(devices._BACKEND_MODULES, "jax", "json")
    reason = _backend_refusal(jax_study)
    assert isinstance(reason, str) and reason.startswith(
        "train.backend is 'jax', but Keras was already imported in this trial process with the "
        "'tensorflow' backend")
    assert _backend_refusal(as_experiment(tiny_spec(tmp_path))) is None  # chosen
    assert os.environ["KERAS_BACKEND"] == "tensorflow"
    clean_env.setitem(devices._BACKEND_MODULES, "jax", "no_such_module_for_tunefleet")
    clean_env.delitem(sys.modules, "keras", raising=False)
    reason = _backend_refusal(jax_study)
    assert reason is not None and re.match(
        r"train\.backend: jax needs the 'no_such_module_for_tunefleet' package, .* install it "
        r"with pip install 'tunefleet\[jax\]' .* on every node that runs trials$", reason)
    # The row train_trial reports reads back as a failed trial, with that reason.
    row = {"stop_reason": STOP_REASONS[5], "epoch": 0, "failure_reason": reason}
    assert trial_status(None, row) == ("failed", reason)


@needs_jax
def test_a_trial_whose_process_imported_keras_on_another_backend_fails_once(ray_local,
                                                                            tmp_path):
    """In a real Ray trial: a hypermodel passed unshipped to a JAX trial is unpickled (and
    imports Keras, on TensorFlow) before the trial body, which then refuses the backend. The
    trial ends failed at once with the reason, not errored after failure.max_retries."""
    from ray import tune

    from tunefleet.data import load_dataset
    from tunefleet.spec.sections import DataSpec
    from tunefleet.trainables.hypermodel import resolve_hypermodel
    from tunefleet.trainables.keras_trainable import train_trial

    experiment = as_experiment(tiny_spec(tmp_path, model={"hypermodel": "tests.hypermodels:"
                                                                        "layered_mlp"},
                                         search_space={}, train={"epochs": 1, "backend": "jax"}))
    trainable = tune.with_parameters(
        train_trial, data=load_dataset(DataSpec(dataset="digits")).training,
        experiment=experiment, hypermodel=resolve_hypermodel("tests.hypermodels:layered_mlp"))
    grid = tune.Tuner(tune.with_resources(trainable, {"cpu": 1}), run_config=tune.RunConfig(
        storage_path=str(tmp_path / "ray"), name="refused", verbose=0,
        failure_config=tune.FailureConfig(max_failures=2))).fit()
    assert grid.num_errors == 0  # errored (retried twice first) before the fix
    result = grid[0]
    rows = result.metrics_dataframe
    assert len(rows) == 1  # one attempt, one row
    assert result.metrics["stop_reason"] == "failed_trial"
    reason = result.metrics["failure_reason"]
    assert isinstance(reason, str) and reason.startswith(
        "train.backend is 'jax', but Keras was already imported in this trial process with the "
        "'tensorflow' backend")
    assert trial_status(None, result.metrics) == ("failed", reason)


def test_the_spec_takes_tensorflow_by_default_and_jax(tmp_path):
    assert as_experiment(tiny_spec(tmp_path)).train.backend == "tensorflow"
    experiment = as_experiment(tiny_spec(tmp_path, train={"backend": "jax"}))
    assert experiment.train.backend == "jax" and isinstance(experiment.train.backend, str)


def test_preview_prints_the_backend_and_what_it_changes(tmp_path):
    from tunefleet.study.preview import collect_plan, render_plan

    def training(**train):
        plan = render_plan(collect_plan(as_experiment(tiny_spec(tmp_path, train={
            "epochs": 1, **train}))))
        return next(x for x in plan.splitlines() if x.startswith("Training")).split(None, 1)[1]

    assert training(backend="jax") == ("8 steps per execution; float32; XLA on (Keras' choice "
                                       "on JAX); Keras backend jax")
    # JAX's DataParallel runs Keras' multi-step loop; TensorFlow's MirroredStrategy does not.
    distribute = {"strategy": "mirrored", "cpu_devices": 2}
    assert training(backend="jax", distribute=distribute, jit_compile=False) == (
        "8 steps per execution; float32; XLA off (JAX runs eagerly, slowly); Keras backend jax")
    assert training(distribute=distribute).startswith("1 step per execution")
    assert training().endswith("; Keras backend tensorflow")


def test_divisible_cuts_arrays_to_whole_replicas_and_leaves_the_rest():
    x, y = np.zeros((1077, 8, 8, 1), np.float32), np.arange(1077)
    epoch = _divisible({"x": x, "y": y}, 2)
    assert epoch["x"].shape == (1076, 8, 8, 1) and np.array_equal(epoch["y"], y[:1076])
    val = _divisible((x[:361], y[:361]), 4)
    assert isinstance(val, tuple) and [len(a) for a in val] == [360, 360]
    assert _divisible({"x": x, "y": y}, 1)["x"] is x  # one device: untouched
    marker = object()  # a tf.data pipeline, say: not arrays
    assert _divisible({"x": marker}, 2)["x"] is marker


def test_one_call_fit_arguments_are_cut_to_whole_replicas_where_they_are_arrays():
    """What a hypermodel's own fit gets under DataParallel (one-call mode): x, y, its
    sample_weight and validation data cut to whole replicas (257 and 101 rows: odd); a
    generator or dataset, class_weight and the other keywords as given."""
    rng = np.random.default_rng(0)
    info = DataInfo("odd", "multiclass", (8, 8, 1), 10, [str(c) for c in range(10)])
    data = TrainingData(info, rng.random((257, 8, 8, 1), dtype=np.float32), np.arange(257) % 10,
                        rng.random((101, 8, 8, 1), dtype=np.float32), np.arange(101) % 10)
    weights, class_weight = np.ones(257), {0: 2.0, 1: 1.0}
    args, kwargs = fit_call(data, {"sample_weight": weights, "class_weight": class_weight},
                            {"batch_size": 64, "verbose": 0}, 2, [])
    cut_args, cut = whole_replicas(args, kwargs, 2)
    assert isinstance(cut_args, tuple) and [len(a) for a in cut_args] == [256, 256]
    assert np.array_equal(cut_args[1], data.y_train[:256])
    assert len(cut["sample_weight"]) == 256
    assert isinstance(cut["validation_data"], tuple)
    assert [len(a) for a in cut["validation_data"]] == [100, 100]
    assert cut["class_weight"] is class_weight and cut["batch_size"] == 64
    assert cut["epochs"] == 2 and cut["callbacks"] == []
    # 4 devices: 256 and 100 rows; multi-input x as a list or dict of arrays
    x = [data.x_train, data.x_train[:, 0]]
    (xs, y), more = whole_replicas((x, data.y_train), {"validation_data": ({"a": data.x_val},
                                                                          data.y_val)}, 4)
    assert isinstance(xs, list) and [len(a) for a in xs] == [256, 256] and len(y) == 256
    assert len(more["validation_data"][0]["a"]) == 100
    # not arrays: a generator, a dataset (any object without a shape); one device: untouched
    generator = (b for b in [])
    marker = object()
    (g,), rest = whole_replicas((generator,), {"validation_data": marker, "x": [1, 2, 3]}, 2)
    assert g is generator and rest["validation_data"] is marker and rest["x"] == [1, 2, 3]
    same_args, same = whole_replicas(args, kwargs, 1)
    assert same_args is args and same is kwargs


def test_ship_pickles_only_for_another_backend_and_unships_as_it_was(tmp_path):
    tf_study = as_experiment(tiny_spec(tmp_path))
    jax_study = as_experiment(tiny_spec(tmp_path, train={"backend": "jax"}))
    value = {"callbacks": [], "x": np.arange(3)}
    assert ship(value, tf_study) is value and ship(None, jax_study) is None
    shipped = ship(value, jax_study)
    assert isinstance(shipped, Shipped) and isinstance(shipped.payload, bytes)
    back = _unship(shipped)
    assert np.array_equal(back["x"], value["x"]) and back["callbacks"] == []
    assert _unship(value) is value


@needs_jax
@pytest.mark.slow
def test_a_jax_study_trains_data_parallel_and_its_best_model_restores_on_tensorflow(
        ray_local, tmp_path):
    """Two trials on JAX, each over 2 XLA host devices (DataParallel) with mixed_bfloat16 and 4
    steps per execution (mixed_float16 on JAX: the fresh-process test below); 1077 training examples, an odd number, so every epoch's last batch
    is cut to whole replicas. The report restores the best trial's JAX checkpoint in this
    (TensorFlow) process and scores it on the test split."""
    import keras

    from tunefleet import report, run

    record = tmp_path / "record"
    record.mkdir()
    result = run(tiny_spec(
        tmp_path, name="on_jax",
        model={"builder": "tests.backend_builders:recording_mlp",
               "params": {"units": 32, "record": str(record)}},
        search_space={"learning_rate": {"type": "loguniform", "low": 3e-3, "high": 2e-2}},
        search={"algorithm": "random", "num_samples": 2, "seed": 3},
        train={"epochs": 2, "batch_size": 32, "learning_rate": 0.01, "backend": "jax",
               "mixed_precision": "mixed_bfloat16", "steps_per_execution": 4,
               "distribute": {"strategy": "mirrored", "cpu_devices": 2}}))
    assert result.finished == 2
    assert (result.trials["status"] == "completed").all()
    facts = [json.loads(p.read_text()) for p in record.iterdir()]
    in_trials = [f for f in facts if f["pid"] != os.getpid()]  # the driver's checks build too
    assert len(in_trials) == 2  # one model per trial
    for fact in in_trials:
        assert fact["backend"] == "jax"
        assert fact["dtype_policy"] == "mixed_bfloat16"  # the trial builds under the policy
        assert fact["env"]["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
        assert fact["env"]["XLA_PYTHON_CLIENT_MEM_FRACTION"] is None  # no GPU share
        assert fact["jax_devices"] == ["cpu:0", "cpu:1"]
        assert fact["distribution"] == "DataParallel" and fact["mesh_devices"] == 2
    rows = [json.loads(line) for p in result.path.glob("trial_*/result.json")
            for line in p.read_text().splitlines()]
    assert len(rows) == 4 and all(r["replicas"] == 2 and r["global_batch_size"] == 64
                                  for r in rows)
    assert max(r["val_accuracy"] for r in rows) > 0.5  # it learned
    built = report(result.path)
    assert keras.backend.backend() == "tensorflow"  # the driver's Keras
    assert isinstance(built.test.metrics["accuracy"], float)
    assert built.test.metrics["accuracy"] > 0.5  # the JAX weights, restored on TensorFlow
    assert Path(result.path, "report", "report.html").exists()


JAX_CHILD = """
import json, pickle, sys
from pathlib import Path
shipped = pickle.loads(Path(sys.argv[1]).read_bytes())
facts = {"keras_after_unpickling": "keras" in sys.modules}
from tunefleet.cluster.devices import configure_trial_devices, make_strategy, select_backend
from tunefleet.trainables.keras_trainable import _unship, build_trial_model
from tunefleet.trainables.epoch_data import EpochData
from tunefleet.study.runner import as_experiment
from tunefleet.data import load_dataset
from tunefleet.spec.sections import DataSpec
select_backend("jax", 0.0, cpu_devices=2)
configure_trial_devices(1, 0)
hypermodel = _unship(shipped)  # imports its module, and Keras, now: on JAX
import keras
facts["backend"] = keras.backend.backend()
spec = json.loads(Path(sys.argv[2]).read_text())
data = load_dataset(DataSpec(dataset="digits")).training
trial = build_trial_model(as_experiment(spec), data.info, {"learning_rate": 0.01})
model = trial.model
facts.update(steps=int(model.steps_per_execution), jit=model.jit_compile,
             optimizer=type(model.optimizer).__name__,
             hidden=next(l.compute_dtype for l in model.layers if isinstance(l, keras.layers.Dense)),
             tensorflow_gpus=len(sys.modules["tensorflow"].config.get_visible_devices("GPU")))
feed = EpochData(data, 64, True, pipeline=True)  # the trainable asks; on JAX: arrays
history = model.fit(**feed.epoch(7, 0), batch_size=64, epochs=1, verbose=0,
                    validation_data=feed.validation())
facts.update(pipeline=feed.pipeline, loss=history.history["loss"][0],
             val_accuracy=history.history["val_accuracy"][0])
spec["model"] = {"hypermodel": "tests.hypermodels:layered_mlp"}
spec["search_space"] = {}
spec["train"] = {"epochs": 1, "backend": "jax"}
built = build_trial_model(as_experiment(spec), data.info, {}, hypermodel)
facts["hypermodel_weights"] = type(built.model.weights[0].value).__module__
spec = json.loads(Path(sys.argv[2]).read_text())
spec["train"].update(jit_compile=False, distribute={"strategy": "mirrored", "cpu_devices": 2})
experiment = as_experiment(spec)
strategy = make_strategy(experiment.train.distribute)
spread = build_trial_model(experiment, data.info, {"learning_rate": 0.01}, strategy=strategy)
facts.update(distributed_steps=int(spread.model.steps_per_execution), replicas=spread.replicas,
             distributed_jit=spread.model.jit_compile, strategy=type(strategy).__name__)
# mixed_float16 trains under DataParallel (whole global batches of 2 x 32)
spread_history = spread.model.fit(data.x_train[:256], data.y_train[:256], batch_size=64,
                                  epochs=1, verbose=0)
facts.update(distributed_loss=spread_history.history["loss"][0],
             distributed_optimizer=type(spread.model.optimizer).__name__)
# One-call mode (the hypermodel's own fit, as train_one_call calls it) under DataParallel on
# 257 rows: not whole global batches of 2 x 32; cut to whole replicas, it trains.
import numpy as np
from tunefleet.trainables.fit_contract import fit_call
from tunefleet.trainables.keras_tuner_fit import base_arguments, whole_replicas
spec["model"] = {"hypermodel": "tests.hypermodels:layered_mlp"}
spec["search_space"] = {}
spec["train"] = {"epochs": 1, "backend": "jax", "batch_size": 32,
                 "distribute": {"strategy": "mirrored", "cpu_devices": 2}}
experiment = as_experiment(spec)
one = build_trial_model(experiment, data.info, {}, hypermodel, strategy=strategy)
args, kwargs = fit_call(data, {"sample_weight": np.ones(len(data.y_train))},
                        base_arguments(experiment, hypermodel, one.replicas), 1, [], rows=257)
try:
    one.fit(*args, **kwargs)
    facts["one_call_uncut"] = "trained"
except Exception as exc:
    facts["one_call_uncut"] = type(exc).__name__
args, kwargs = whole_replicas(args, kwargs, one.replicas)
one_call = one.fit(*args, **kwargs)
facts.update(one_call_rows=[len(args[0]), len(kwargs["validation_data"][0])],
             one_call_batch=kwargs["batch_size"], one_call_loss=one_call.history["loss"][-1])
print("RESULT " + json.dumps(facts))
"""


def _child(script: str, *args: str, env: dict[str, str], base: dict[str, str]) -> dict:
    """Run ``script`` in a fresh process with ``base`` (the environment as it was when the
    module's tests began: tests here change os.environ while this may run) and ``env``."""
    proc = subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**base, "PYTHONPATH": str(ROOT),
                                                      "TF_CPP_MIN_LOG_LEVEL": "2", **env})
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return json.loads(lines[-1].removeprefix("RESULT "))


def _jax_child_inputs(tmp_path: Path) -> tuple[str, str]:
    """JAX_CHILD's arguments: a shipped hypermodel's pickle and a JAX study's spec (an MLP,
    4 steps per execution, mixed_float16)."""
    from tunefleet.trainables.hypermodel import resolve_hypermodel

    spec = tiny_spec(tmp_path, model={"builder": "mlp", "params": {"layers": 1, "units": 32}},
                     search_space={}, train={"epochs": 1, "backend": "jax",
                                             "steps_per_execution": 4,
                                             "mixed_precision": "mixed_float16"})
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    shipped = ship(resolve_hypermodel("tests.hypermodels:layered_mlp"), as_experiment(spec))
    (tmp_path / "hypermodel.pkl").write_bytes(pickle.dumps(shipped))
    return str(tmp_path / "hypermodel.pkl"), str(tmp_path / "spec.json")


def _mirrored_child_inputs(tmp_path: Path) -> str:
    """TF_MIRRORED_CHILD's argument: a spec training mixed_float16 over 2 logical CPUs."""
    spec = tiny_spec(tmp_path, train={"epochs": 2, "batch_size": 32, "learning_rate": 0.01,
                                      "mixed_precision": "mixed_float16",
                                      "distribute": {"strategy": "mirrored", "cpu_devices": 2}})
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    return str(tmp_path / "spec.json")


@pytest.fixture(scope="module", autouse=True)
def children(request, tmp_path_factory):
    """The fresh processes of the two tests below (JAX_CHILD, TF_MIRRORED_CHILD), started
    with this module's first test, in threads: each (mostly an interpreter importing Keras
    and its backend) runs beside the tests before its own, which waits for its facts. Only
    those of the selected tests start."""
    names = {item.name for item in request.session.items}
    base = dict(os.environ)
    with ThreadPoolExecutor(max_workers=2) as pool:
        started = {}
        if HAS_JAX and "test_a_jax_trial_process_builds_and_compiles_as_the_spec_says" in names:
            started["jax"] = pool.submit(
                _child, JAX_CHILD, *_jax_child_inputs(tmp_path_factory.mktemp("jax_child")),
                env={"KERAS_BACKEND": "tensorflow"}, base=base)
        if "test_mixed_float16_trains_under_tensorflows_mirrored_strategy" in names:
            started["mirrored"] = pool.submit(
                _child, TF_MIRRORED_CHILD,
                _mirrored_child_inputs(tmp_path_factory.mktemp("mirrored_child")), env={},
                base=base)
        yield started


@needs_jax
def test_a_jax_trial_process_builds_and_compiles_as_the_spec_says(children):
    """In a fresh process whose environment says tensorflow (as a Ray worker's does): a
    shipped hypermodel unpickles without importing Keras; once the trial selected JAX, the
    builder's model has the spec's steps per execution, XLA (Keras' auto on JAX) and
    mixed_float16 with loss scaling, and trains on the arrays the trainable feeds on JAX; the
    hypermodel builds on JAX too; a distributed trial gets a DataParallel over 2 host devices
    and keeps its steps per execution."""
    facts = children["jax"].result()
    assert facts["keras_after_unpickling"] is False
    assert facts["backend"] == "jax"
    assert facts["steps"] == 4 and facts["jit"] is True
    assert facts["optimizer"] == "LossScaleOptimizer" and facts["hidden"] == "float16"
    assert facts["tensorflow_gpus"] == 0  # imported by Keras to seed it, kept off the GPUs
    assert facts["pipeline"] is False  # tf.data only on TensorFlow
    assert math.isfinite(facts["loss"]) and facts["val_accuracy"] > 0.2
    assert facts["hypermodel_weights"].startswith("jax")  # a JAX array, not a tf.Variable
    # Distributed on JAX: DataParallel, and Keras' multi-step loop kept (TensorFlow's
    # MirroredStrategy gets 1 step per execution); jit_compile: false is passed on.
    assert facts["strategy"] == "DataParallel" and facts["replicas"] == 2
    assert facts["distributed_steps"] == 4 and facts["distributed_jit"] is False
    assert facts["distributed_optimizer"] == "LossScaleOptimizer"
    assert math.isfinite(facts["distributed_loss"])
    # One-call mode: 257 rows do not split over 2 devices (the last batch has 1); cut to 256
    # (and the validation rows to 256 too), the hypermodel's own fit trains.
    assert facts["one_call_uncut"] == "IndivisibleError"
    assert facts["one_call_rows"] == [256, 256] and facts["one_call_batch"] == 64
    assert math.isfinite(facts["one_call_loss"])


TF_MIRRORED_CHILD = """
import json, sys
from pathlib import Path
from tunefleet.cluster.devices import configure_trial_devices, make_strategy, select_backend
from tunefleet.trainables.keras_trainable import build_trial_model, fit_arguments
from tunefleet.trainables.epoch_data import EpochData
from tunefleet.study.runner import as_experiment
from tunefleet.data import load_dataset
from tunefleet.spec.sections import DataSpec
experiment = as_experiment(json.loads(Path(sys.argv[1]).read_text()))
select_backend("tensorflow", 0.0)
configure_trial_devices(2, 0, "limit", 2)
data = load_dataset(DataSpec(dataset="digits")).training
strategy = make_strategy(experiment.train.distribute)
trial = build_trial_model(experiment, data.info, {"learning_rate": 0.01, "dropout": 0.1},
                          strategy=strategy)
feed = EpochData(data, 32 * trial.replicas, True, pipeline=True)
args = fit_arguments(experiment, trial.settings, None, trial.replicas)
args.pop("batch_size")
history = trial.model.fit(**feed.epoch(7, 0), epochs=2, validation_data=feed.validation(), **args)
print("RESULT " + json.dumps({"replicas": trial.replicas, "pipeline": feed.pipeline,
    "optimizer": type(trial.model.optimizer).__name__, "loss": history.history["loss"],
    "val_accuracy": history.history["val_accuracy"][-1]}))
"""


def test_mixed_float16_trains_under_tensorflows_mirrored_strategy(children):
    """The combination is not refused: it works (on two logical CPUs, through the tf.data
    feed the trainable uses); the JAX study above runs it under DataParallel."""
    facts = children["mirrored"].result()
    assert facts["replicas"] == 2 and facts["pipeline"] is True
    assert facts["optimizer"] == "LossScaleOptimizer"
    assert all(math.isfinite(v) for v in facts["loss"]) and facts["loss"][1] < facts["loss"][0]
    assert facts["val_accuracy"] > 0.3
