"""output.trackers: one tiny study logs to TensorBoard, MLflow and W&B at once, and each is read
back with its own reader (TensorBoard's event reader and HParams parser, MLflow's client on the
study's SQLite store, W&B's offline run files); a resumed study keeps logging to the same runs;
missing packages are refused before training."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import tiny_spec
from tunefleet import SpecError, resume, run
from tunefleet.study.runner import as_experiment, prepare

_CLEARED = ("WANDB_MODE", "WANDB_API_KEY", "WANDB_PROJECT", "MLFLOW_TRACKING_URI",
            "MLFLOW_EXPERIMENT_NAME")


def _spec(tmp_path: Path) -> dict:
    return tiny_spec(
        tmp_path, name="tracked", data={"dataset": "breast_cancer"},
        model={"builder": "mlp", "params": {"units": 8}},
        train={"epochs": 2, "batch_size": 64, "learning_rate": 0.01,
               "metrics": ["accuracy", "auc"]},
        search_space={"learning_rate": {"type": "loguniform", "low": 1e-3, "high": 3e-2},
                      "optimizer": {"type": "choice", "values": ["adam", "sgd"]}},
        search={"algorithm": "random", "num_samples": 2, "seed": 2},
        objective={"metric": "val_auc", "mode": "max"},
        output={"storage": str(tmp_path / "results"),
                "trackers": ["tensorboard", "mlflow", "wandb"]})


@pytest.fixture(scope="module")
def tracked(ray_local, tmp_path_factory):
    """The study (2 trials, 2 epochs) with all three trackers, W&B offline and the default
    MLflow store; then resumed with one trial more."""
    with pytest.MonkeyPatch.context() as mp:
        for key in _CLEARED:
            mp.delenv(key, raising=False)
        # MLflow's usage telemetry would contact its server from the driver; tests stay local.
        mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        spec = _spec(tmp_path_factory.mktemp("tracked"))
        first = run(spec)
        params = {d.name: json.loads((d / "params.json").read_text())
                  for d in first.path.glob("trial_*")}
        resumed = resume(first.path, ["search.num_samples=3"])
        yield first, params, resumed


def _history(trial_dir: Path) -> list[dict]:
    lines = (trial_dir / "result.json").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _trial_dirs(result) -> list[Path]:
    return sorted(result.path.glob("trial_*"))


@pytest.mark.slow
def test_tensorboard_hparams_sessions_per_trial(tracked):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata

    first, _, resumed = tracked
    trials = resumed.trials.set_index("trial_id")
    assert len(_trial_dirs(resumed)) == 3
    for trial_dir in _trial_dirs(resumed):
        events = EventAccumulator(str(trial_dir))
        events.Reload()
        content = events.PluginTagToContent("hparams")
        start = metadata.parse_session_start_info_plugin_data(
            content[metadata.SESSION_START_INFO_TAG])
        config = json.loads((trial_dir / "params.json").read_text())
        assert "trial_seed" in config and set(start.hparams) == {"learning_rate", "optimizer"}
        assert start.hparams["learning_rate"].number_value == pytest.approx(
            config["learning_rate"])
        assert start.hparams["optimizer"].string_value == config["optimizer"]
        assert metadata.SESSION_END_INFO_TAG in content
        # Its metrics: the best epoch's objective (as trials.csv has it) and the final epoch's.
        trial_id = trial_dir.name.removeprefix("trial_")
        best = events.Scalars("best/val_auc")
        assert [e.value for e in best] == [pytest.approx(trials.loc[trial_id, "best_val_auc"])]
        assert best[0].step == trials.loc[trial_id, "best_epoch"]
        last = _history(trial_dir)[-1]
        assert events.Scalars("ray/tune/val_auc")[-1].value == pytest.approx(last["val_auc"])
    # One experiment record at the study's top: every hyperparameter, the Keras metrics.
    top = EventAccumulator(str(resumed.path))
    top.Reload()
    record = metadata.parse_experiment_plugin_data(
        top.PluginTagToContent("hparams")[metadata.EXPERIMENT_TAG])
    assert sorted(h.name for h in record.hparam_infos) == ["learning_rate", "optimizer"]
    tags = [m.name.tag for m in record.metric_infos]
    assert tags[0] == "best/val_auc" and "ray/tune/val_loss" in tags
    assert not any(t.endswith(("epoch_time_s", "trial_seed", "reported_at")) for t in tags)


@pytest.mark.slow
def test_tensorboard_hparams_dashboard_lists_every_trial(tracked):
    """What the HPARAMS tab shows, computed by TensorBoard's own HParams backend."""
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider
    from tensorboard.backend.event_processing import plugin_event_multiplexer as pem
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import api_pb2, backend_context, list_session_groups

    _, _, resumed = tracked
    logdir = str(resumed.path)
    mux = pem.EventMultiplexer()
    mux.AddRunsFromDirectory(logdir)
    mux.Reload()
    tb = base_plugin.TBContext(logdir=logdir, multiplexer=mux,
                               data_provider=data_provider.MultiplexerDataProvider(mux, logdir))
    request = api_pb2.ListSessionGroupsRequest(
        start_index=0, slice_size=100, include_metrics=True,
        allowed_statuses=[api_pb2.STATUS_UNKNOWN, api_pb2.STATUS_SUCCESS])
    groups = list_session_groups.Handler(context.RequestContext(),
                                         backend_context.Context(tb), "", request).run()
    trials = resumed.trials.set_index("trial_id")
    assert sorted(g.name for g in groups.session_groups) == sorted(
        f"trial_{t}" for t in trials.index)
    for group in groups.session_groups:
        assert set(group.hparams) == {"learning_rate", "optimizer"}
        values = {m.name.tag: m.value for m in group.metric_values}
        assert values["best/val_auc"] == pytest.approx(
            trials.loc[group.name.removeprefix("trial_"), "best_val_auc"])
        assert {"ray/tune/val_loss", "ray/tune/loss", "ray/tune/auc"} <= set(values)


@pytest.mark.slow
def test_mlflow_parent_run_with_a_child_run_per_trial(tracked):
    from mlflow.tracking import MlflowClient

    first, params, resumed = tracked
    client = MlflowClient(tracking_uri=f"sqlite:///{resumed.path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tracked")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1, "the resumed study continued its parent run"
    parent = parents[0]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == len(runs) - 1 == 3 and len(params) == 2
    assert parent.info.status == "FINISHED" and parent.data.params["study"] == str(first.path)
    for child in children:
        trial_id = child.data.tags["tunefleet.trial_id"]
        config = json.loads((resumed.path / f"trial_{trial_id}" / "params.json").read_text())
        assert child.data.params == {k: str(v) for k, v in config.items() if k != "trial_seed"}
        history = client.get_metric_history(child.info.run_id, "val_auc")
        rows = [r for r in _history(resumed.path / f"trial_{trial_id}")]
        assert sorted(m.step for m in history) == [r["epoch"] for r in rows] == [1, 2]
        assert [m.value for m in sorted(history, key=lambda m: m.step)] == pytest.approx(
            [r["val_auc"] for r in rows])
        assert isinstance(history[0].value, float) and child.info.status == "FINISHED"
    # The best trial of the first run, its checkpoint under best_model/ of the parent.
    best_id = parent.data.tags["tunefleet.best_trial_id"]
    best = resumed.summary["best"]
    assert best_id == best["trial_id"]
    assert parent.data.metrics["best_val_auc"] == pytest.approx(best["metrics"]["val_auc"])
    files = {a.path for a in client.list_artifacts(parent.info.run_id, "best_model")}
    assert {"best_model/meta.json", "best_model/state.npz"} <= files
    assert (resumed.path / "mlartifacts").is_dir()


@pytest.mark.slow
def test_wandb_offline_run_per_trial_in_the_study(tracked):
    _, _, resumed = tracked
    for trial_dir in _trial_dirs(resumed):
        trial_id = trial_dir.name.removeprefix("trial_")
        logs = list(trial_dir.glob(f"wandb/offline-run-*-{trial_id}/run-{trial_id}.wandb"))
        assert logs, f"no offline W&B run in {trial_dir}"
        data = b"".join(p.read_bytes() for p in logs)
        config = json.loads((trial_dir / "params.json").read_text())
        # W&B's run log (protobuf records): the config's hyperparameters and each epoch's
        # metrics, never the seed.
        assert b"learning_rate" in data and b"val_auc" in data and b"optimizer" in data
        assert repr(config["learning_rate"]).encode() in data
        assert b"trial_seed" not in data and str(config["trial_seed"]).encode() not in data


@pytest.mark.parametrize("tracker, hidden, pattern", [
    ("wandb", "wandb", r"wandb needs the wandb package.*Pip install 'tunefleet\[wandb\]'"),
    ("mlflow", "mlflow", r"mlflow needs the mlflow package.*Pip install 'tunefleet\[mlflow\]'"),
    ("mlflow", "sqlalchemy", r"mlflow needs the sqlalchemy package.*tunefleet\[mlflow\]"),
])
def test_missing_tracker_package_is_refused_before_training(tmp_path, monkeypatch, tracker,
                                                            hidden, pattern):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setitem(sys.modules, hidden, None)  # as if not installed
    experiment = as_experiment(tiny_spec(tmp_path), [f"output.trackers=[{tracker}]"])
    with pytest.raises(SpecError, match=rf"^output\.trackers: {pattern}"):
        prepare(experiment)
    assert not (tmp_path / "results").exists()


def test_wandb_mode_follows_the_environment(monkeypatch):
    from tunefleet.study.trackers import wandb_settings

    for key in _CLEARED:
        monkeypatch.delenv(key, raising=False)
    offline = wandb_settings()
    assert offline["mode"] == "offline" and offline["settings"]["x_disable_stats"] is True
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_settings() == {"mode": "online"}
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_settings()["mode"] == "disabled"


def test_wandb_offline_logging_contacts_no_other_machine(tmp_path, monkeypatch):
    """The trial's W&B logging actor (run here in the test's process, with a queue of one
    result) in offline mode: no connection to anything but this machine. Offline, W&B's own
    telemetry read the mode from the environment only, and reached W&B's server."""
    import ipaddress
    import socket

    from ray.air.integrations.wandb import _QueueItem

    from tunefleet.study.trackers import wandb_settings
    from tunefleet.study.trackers.wandb_logger import _LoggingActor

    for key in _CLEARED:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)  # the actor changes into its directory; restored after
    contacts: list[str] = []
    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.socket.connect

    def getaddrinfo(host, *args, **kwargs):
        contacts.append(str(host))
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            contacts.append(str(address[0]))
        return real_connect(sock, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setenv("WANDB_MODE", "online")  # recorded, so that what the actor sets in
    monkeypatch.delenv("WANDB_MODE")  # this process' environment is undone after the test

    class OneResult:
        items = [(_QueueItem.RESULT, {"training_iteration": 1, "val_auc": 0.75,
                                      "config": {"trial_seed": 7, "units": 8}}),
                 (_QueueItem.END, None)]

        def get(self):
            return self.items.pop(0)

    # exclude: what WandbLogger passes (its excludes, and "config": log_config is off).
    actor = _LoggingActor(logdir=str(tmp_path), queue=OneResult(), exclude=["trial_seed", "config"],
                          to_config=[], project="p", group="g", id="t1", name="t1",
                          config={"units": 8}, **wandb_settings())
    actor.run()
    data = b"".join(p.read_bytes() for p in tmp_path.glob("wandb/offline-run-*-t1/run-t1.wandb"))
    assert b"val_auc" in data and b"units" in data and b"trial_seed" not in data
    others = [c for c in contacts if c not in ("localhost", "")
              and not ipaddress.ip_address(c.split("%")[0]).is_loopback]
    assert others == [], f"offline W&B contacted {others}"
    # W&B's process-wide telemetry exports on a timer or at exit, later than this test looks:
    # that the process has none is what keeps it from contacting W&B's server.
    from wandb.analytics.opentelemetry import opentelemetry_proxy

    assert opentelemetry_proxy.get_open_telemetry_proxy() is None
