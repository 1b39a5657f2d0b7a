"""Every bad input gets a SpecError naming the field, the value and the fix, before Ray starts."""

from __future__ import annotations

import re

import pytest

from tests.conftest import tiny_spec
from tunefleet import SpecError
from tunefleet.storage import experiment_storage
from tunefleet.study.runner import as_experiment, prepare

CASES = [
    # (overrides, regex the message must match)
    (["train.learning_rte=0.1"], r"^train\.learning_rte: unknown key; did you mean 'learning_rate'"),
    (["schedular.name=asha"], r"^schedular: unknown key; did you mean 'scheduler'"),
    (["scheduler={name: asha, grace_perod: 2}"], r"^scheduler\.grace_perod: unknown key; did you mean 'grace_period'"),
    (["search_space.dropout={type: uniform, low: 0.5, high: 0.1}"],
     r"^search_space\.dropout: uniform needs low < high, got low=0\.5, high=0\.1"),
    (["search_space.learning_rate={type: loguniform, low: 0.0, high: 0.1}"],
     r"^search_space\.learning_rate: loguniform needs 0 < low < high, got low=0\.0, high=0\.1"),
    (["search_space.learning_rate={type: loguniform, low: -1, high: 0.1}"],
     r"loguniform needs 0 < low < high, got low=-1\.0"),
    (["search_space.batch_size={type: choice, values: []}"],
     r"^search_space\.batch_size: choice needs at least one value"),
    (["search_space.batch_size={type: grid, values: []}"],
     r"^search_space\.batch_size: grid needs at least one value"),
    (["search_space.batch_size={type: randint, low: 8, high: 8}"],
     r"^search_space\.batch_size: randint needs low < high"),
    (["search_space.filters={low: 4, high: 8}"], r"entry 'filters' is a mapping without 'type'"),
    (["search_space.filters={type: unifrom, low: 4, high: 8}"],
     r"search_space\.filters\.type: unknown value 'unifrom'; did you mean 'uniform'"),
    (["search.num_samples=0"], r"^search\.num_samples: .*greater than or equal to 1, got 0"),
    (["search.algorithm=tpe"],
     r"^search\.algorithm: unknown value 'tpe'; valid: grid, random, hyperopt, optuna, bohb"),
    (["search={algorithm: optuna, sampler: tpee}"],
     r"^search\.sampler: did you mean 'tpe'\? input should be 'tpe' or 'cmaes', got 'tpee'"),
    (["search={algorithm: optuna, sampler: cmaes}",
      "search_space={units: {type: choice, values: [8, 16]}, optimizer: {type: choice, values: [adam, sgd]}}"],
     (r"^search\.sampler: cmaes optimises numeric ranges only, and search_space has none \(only "
      r"choice entries: units, optimizer\).*use sampler: tpe")),
    (["search={algorithm: optuna}", "search_space={units: 16}"],
     r"^search\.algorithm: optuna models the tuned hyperparameters of search_space, and it has none"),
    (["search={algorithm: hyperopt}", "search_space={}"],
     r"^search\.algorithm: hyperopt models the tuned .*use search\.algorithm: random"),
    (["search={algorithm: optuna, n_startup_trials: 0}"],
     r"^search\.n_startup_trials: input should be greater than or equal to 1, got 0"),
    (["search={algorithm: optuna, gamma: 0.3}"], r"^search\.gamma: unknown key; valid keys here: .*sampler"),
    (["search={algorithm: optuna}", "search_space.batch_size={type: grid, values: [32, 64]}"],
     r"^search_space\.batch_size: a grid entry cannot be used with search\.algorithm=optuna"),
    (["search={algorithm: optuna, points_to_evaluate: [{learning_rate: 0.5, dropout: 0.1}]}"],
     r"^search\.points_to_evaluate\[0\]\.learning_rate: 0\.5 is outside loguniform \[0\.001, 0\.02\]"),
    (["model={hypermodel: 'tests.hypermodels:layered_mlp'}", "search_space={}", "train={epochs: 3}",
      "search={algorithm: optuna}"],
     r"^search\.algorithm: optuna cannot search a hypermodel's space.*use search\.algorithm: hyperopt"),
    (["search.algorithm=bohb"],
     (r"^search\.algorithm: bohb needs scheduler\.name: bohb \(BOHB's model learns from the budget.*"
      r"got scheduler\.name: fifo; set scheduler: \{name: bohb\}")),
    (["scheduler={name: bohb}"],
     (r"^scheduler\.name: bohb needs search\.algorithm: bohb \(.*got search\.algorithm: random; set "
      r"search\.algorithm: bohb")),
    (["search={algorithm: bohb, random_fraction: 1.5}", "scheduler={name: bohb}"],
     r"^search\.random_fraction: input should be less than or equal to 1, got 1\.5"),
    (["search={algorithm: bohb, points_to_evaluate: [{learning_rate: 0.01}]}", "scheduler={name: bohb}"],
     r"^search\.points_to_evaluate\[0\]: gives no value for dropout; give every tuned"),
    (["search={algorithm: bohb}", "scheduler={name: bohb, grace_period: 1}"],
     r"^scheduler\.grace_period: unknown key; valid keys here: name, max_t, reduction_factor"),
    (["search={algorithm: bohb}", "scheduler={name: bohb, reduction_factor: 1}"],
     r"^scheduler\.reduction_factor: input should be greater than 1, got 1"),
    (["search={algorithm: bohb}", "scheduler={name: bohb, max_t: 9}"],
     r"^scheduler\.max_t: 9 is more than the most epochs any trial trains \(3\)"),
    (["search={algorithm: bohb}", "scheduler={name: bohb}", "output.checkpoint_every=2"],
     r"^output\.checkpoint_every: BOHB's HyperBand pauses trials at rung boundaries.*use auto"),
    (["scheduler={name: pbt, perturbation_interval: 1}",
      "search_space.filters={type: choice, values: [8, 16]}"],
     (r"^search_space\.filters: 'filters' cannot change while a trial trains: PBT copies a "
      r"trial's weights.*got \{'type': 'choice', 'values': \[8, 16\]\}\. Fix it in "
      r"model\.params, or list the keys to mutate in scheduler\.mutate")),
    (["scheduler={name: pb2, mutate: [conv_blocks]}"],
     (r"^scheduler\.mutate: 'conv_blocks' cannot change while a trial trains.*got "
      r"\['conv_blocks'\]; remove 'conv_blocks' from mutate")),
    (["scheduler={name: pb2}", "search_space.dropout={type: choice, values: [0.1, 0.2]}"],
     r"^search_space\.dropout: PB2 needs bounds to model, got a choice entry\. Use a range"),
    (["scheduler={name: pbt}", "search.max_concurrent=2"],
     r"^search\.max_concurrent: pbt trains its whole population side by side.*got 2\. Remove it"),
    (["scheduler.name=ashaa"],
     (r"^scheduler\.name: unknown value 'ashaa'; did you mean 'asha'\? "
      r"valid: fifo, asha, hyperband, median, bohb, pbt, pb2$")),
    (["search={algorithm: hyperopt, points_to_evaluate: [{learning_rate: 0.01, dropout: 0.1, units: 8}]}"],
     r"^search\.points_to_evaluate\[0\]\.units: not in search_space \(it has learning_rate, dropout\); remove it"),
    (["search={algorithm: hyperopt, points_to_evaluate: [{learning_rate: 0.01}]}"],
     r"^search\.points_to_evaluate\[0\]: gives no value for dropout; give every tuned"),
    (["search={algorithm: hyperopt, points_to_evaluate: [{learning_rate: 0.01, dropout: 0.1}, {learning_rate: 0.5, dropout: 0.1}]}"],
     r"^search\.points_to_evaluate\[1\]\.learning_rate: 0\.5 is outside loguniform \[0\.001, 0\.02\]"),
    (["search={algorithm: hyperopt, points_to_evaluate: [{learning_rate: 0.01, dropout: high}]}"],
     r"^search\.points_to_evaluate\[0\]\.dropout: 'high' is not a number in \[0\.0, 0\.3\]"),
    (["search={algorithm: random, points_to_evaluate: [{learning_rate: 0.01, dropout: 0.1}]}"],
     r"^search\.points_to_evaluate: unknown key"),
    (["search.algorithm=hyperopt", "search_space.batch_size={type: grid, values: [32, 64]}"],
     r"^search_space\.batch_size: a grid entry cannot be used with search\.algorithm=hyperopt"),
    (["search.algorithm=grid"], r"^search_space\.learning_rate: grid search cannot enumerate a loguniform"),
    (["scheduler={name: asha, grace_period: 5}"],
     r"^scheduler\.grace_period: 5 is larger than the epoch budget \(3.*use a grace_period of at most 3"),
    (["scheduler={name: hyperband, grace_period: 1}"], r"^scheduler\.grace_period: unknown key"),
    (["objective.metric=val_acc"],
     r"^objective\.metric: the trainable never reports this metric, got 'val_acc'\. Did you mean 'val_accuracy'"),
    (["objective.mode=maximize"], r"^objective\.mode: input should be 'min' or 'max', got 'maximize'"),
    (["resources.cpu=0"], r"^resources\.cpu: input should be greater than 0, got 0"),
    (["resources.cpu=-1"], r"^resources\.cpu: input should be greater than 0, got -1"),
    (["resources.gpu=-0.5"], r"^resources\.gpu: input should be greater than or equal to 0"),
    (["resources.gpu=1.5"], r"^resources\.gpu: .*got gpu=1\.5; use 1 or 2"),
    (["data.dataset=mnits"], r"^data\.dataset: did you mean 'mnist'\? input should be 'digits', .*got 'mnits'"),
    (["data.dataset=csv"], r"^data: dataset: csv reads a file; set data\.path"),
    (["data={dataset: idx, path: /nonexistent/idx}"], r"^data\.path: data\.path '/nonexistent/idx' holds no IDX files"),
    (["data={dataset: digits, path: /tmp/x.csv}"], r"^data: dataset: digits is bundled with scikit-learn and takes no data\.path"),
    (["data={dataset: digits, task: binary}"], r"^data: dataset: digits has a known task"),
    (["data={dataset: image_folder, path: /tmp}"],
     r"^data: dataset: image_folder needs data\.image_size: \[height, width\]"),
    (["data={dataset: image_folder, image_size: [16, 16]}"],
     r"^data: dataset: image_folder reads a folder of class sub-folders; set data\.path"),
    (["data={dataset: image_folder, path: /tmp, image_size: [0, 16]}"],
     r"^data\.image_size\[0\]: input should be greater than or equal to 1, got 0"),
    (["data={dataset: image_folder, path: /tmp, image_size: 16}"],
     r"^data\.image_size: input should be a valid (tuple|list)"),
    (["data={dataset: image_folder, path: /tmp, image_size: [16, 16], channels: 4}"],
     r"^data\.channels: input should be 1 or 3, got 4"),
    (["data={dataset: image_folder, path: /tmp, image_size: [16, 16], cache: ram}"],
     r"^data\.cache: input should be 'memory', 'disk' or 'none', got 'ram'"),
    (["data={dataset: image_folder, path: /tmp, image_size: [16, 16], split: last}"],
     r"^data: data\.split: last keeps the files' order.*use split: random"),
    (["data={dataset: digits, cache: memory}"],
     r"^data: data\.cache is only for dataset: image_folder, got dataset: digits; remove it"),
    (["data={dataset: image_folder, path: /nonexistent/images, image_size: [16, 16]}"],
     r"^data\.path: is not a folder, got '/nonexistent/images'\. Point it at a folder with one"),
    (["failure.max_retries=-1"], r"^failure\.max_retries: input should be greater than or equal to 0, got -1"),
    (["failure.max_consecutve=2"], r"^failure\.max_consecutve: unknown key; did you mean 'max_consecutive'"),
    (["train.trial_timeout_s=0"], r"^train\.trial_timeout_s: input should be greater than 0, got 0"),
    (["train.distribute={strategy: mirrored}"],
     r"^train\.distribute: mirrored spreads one trial over its GPUs and needs resources\.gpu >= 2, got gpu=0"),
    (["train.distribute={strategy: mirrored, cpu_devices: 1}"],
     r"^train\.distribute\.cpu_devices: input should be greater than or equal to 2"),
    (["train.backend=torch"],
     r"^train\.backend: unknown value 'torch' \(Keras' torch backend is not supported\); valid: tensorflow, jax"),
    (["train.backend=jaxx"], r"^train\.backend: unknown value 'jaxx'; did you mean 'jax'\? valid: tensorflow, jax"),
    (["resources.gpu_memory=lots"], r"^resources\.gpu_memory: input should be 'limit' or 'growth', got 'lots'"),
    (["output.storage=ftp://host/studies"],
     r"^output\.storage: unsupported scheme 'ftp://' in 'ftp://host/studies'; use a path .* s3://, gs://"),
    (["output.storage=s3:///studies"], r"^output\.storage: 's3:///studies' names no bucket; write s3://BUCKET/path"),
    (["output.dir=elsewhere"], r"^output\.dir: unknown key; it is the old name of 'storage', so give only 'storage'"),
    (["output.trackers=[tensorbord]"],
     r"^output\.trackers: unknown tracker 'tensorbord'; did you mean 'tensorboard'\? valid: tensorboard, mlflow, wandb"),
    (["output.trackers=[comet]"], r"^output\.trackers: unknown tracker 'comet'; valid: tensorboard, mlflow, wandb"),
    (["output.trackers=[mlflow, mlflow]"], r"^output\.trackers: 'mlflow' is listed twice; list each tracker once"),
    (["output.trackers=3"], r"^output\.trackers: trackers is a list of names, got 3; write e\.g\. trackers: \[tensorboard"),
    (["search.executions_per_trial=0"], r"^search\.executions_per_trial: input should be greater than or equal to 1, got 0"),
    (["search.aggregate=max"], r"^search\.aggregate: input should be 'mean', 'median' or 'worst', got 'max'"),
    (["model.params.augment_flip=diagonal"],
     r"^model\.params: builder 'cnn' rejects them: augment_flip must be one of none, horizontal"),
    (["search_space.augment_rotation={type: uniform, low: 0.0, high: 1.5}"],
     r"^search_space\.augment_rotation: builder 'cnn' rejects it: augment_rotation is a fraction in \[0, 1\), got 1\.5"),
    (["model={hypermodel: 'tests.hypermodels:layered_mlp'}", "train={epochs: 3}"],
     r"^search_space\.learning_rate: a hypermodel declares its own search space"),
    (["model={hypermodel: 'tests.hypermodels:layered_mlp'}", "search_space={}"],
     r"^train\.learning_rate: the hypermodel compiles its own model"),
    (["model={hypermodel: 'tests.hypermodels:layered_mlp', builder: mlp}"],
     r"^model: set either hypermodel or builder/params, not both"),
    (["model={hypermodel: not a path}"], r"^model\.hypermodel: hypermodel must be 'package\.module:build_model'"),
    (["model={hypermodel: 'tests.hypermodels:nothing'}", "search_space={}", "train={epochs: 3}"],
     r"^model\.hypermodel: module 'tests\.hypermodels' has no attribute 'nothing'"),
    (["model={hypermodel: 'tests.hypermodels:continuous_parent'}", "search_space={}", "train={epochs: 3}"],
     r"^model\.hypermodel: which hyperparameters exist depends on the value of 'width'"),
    (["model={hypermodel: 'tests.hypermodels:uncompiled'}", "search_space={}", "train={epochs: 3}"],
     r"^model\.hypermodel: .*returned an uncompiled model; call model\.compile"),
    (["model={hypermodel: 'tests.hypermodels:grid_mlp'}", "search_space={}", "train={epochs: 3}",
      "objective={metric: val_auc, mode: max}"],
     r"^objective\.metric: the hypermodel's compiled model never reports this metric, got 'val_auc'"),
    (["model={hypermodel: 'tests.hypermodels:one_float'}", "search_space={}", "train={epochs: 3}",
      "search={algorithm: grid}"],
     r"^model\.hypermodel: grid search needs a finite set of values, but Float 'lr'"),
    (["model.builder=cnnn"], r"^model\.builder: unknown model builder 'cnnn'; did you mean 'cnn'"),
    (["model.builder=no_such_pkg.models:build"],
     r"^model\.builder: cannot import module 'no_such_pkg\.models' \(ModuleNotFoundError"),
    (["model.builder=tests.builders:missing"],
     r"^model\.builder: module 'tests\.builders' has no function 'missing'"),
    (["search_space.filterz={type: choice, values: [8, 16]}"],
     (r"^search_space\.filterz: is neither a training option nor a parameter of builder 'cnn'\. "
      r"Did you mean 'filters'")),
    (["model.params.learning_rate=0.1"],
     r"^model\.params\.learning_rate: is a training option.*Set train\.learning_rate"),
    (["data.dataset=breast_cancer"], r"^model\.builder: cnn needs images, but dataset 'breast_cancer'"),
    (["search_space.conv_blocks={type: choice, values: [2, 4]}"],
     r"^search_space\.conv_blocks: 4 pooled conv blocks shrink the 8x8 images.*at most 3 blocks"),
    (["search_space.conv_blocks={type: choice, values: [2, 4]}",
      "search_space.pooling={type: choice, values: [max, none]}"],
     r"^search_space\.conv_blocks: 4 pooled conv blocks"),
    (["train.metrics=[accuracy, mae]"], r"^train\.metrics: 'mae' is not available for a multiclass task"),
    (["train.early_stopping={monitor: val_los}"],
     r"^train\.early_stopping\.monitor: the trainable never reports.*Did you mean 'val_loss'"),
    (["train.lr_schedule={type: step}", "train.reduce_lr_on_plateau={patience: 2}"],
     r"^train: reduce_lr_on_plateau and lr_schedule both set the learning rate"),
    (["search_space.trial_seed=3"], r"'trial_seed' is reserved"),
    (["scheduler={name: asha, max_t: 9}"], r"^scheduler\.max_t: 9 is more than the most epochs"),
    (["cluster={address: auto, num_cpus: 4}"], r"^cluster: num_cpus/num_gpus size an embedded local Ray only"),
    (["name=my study"], r"^name: name becomes a directory name"),
    (["search_space.batch_size={type: choice, values: [0, 32]}"],
     r"^search_space\.batch_size: 0 is not a valid train\.batch_size \(input should be greater than or equal to 1"),
    (["search_space.optimizer={type: choice, values: [adam, lion]}"],
     r"^search_space\.optimizer: 'lion' is not a valid train\.optimizer"),
    (["search_space.learning_rate={type: uniform, low: -1, high: 1}"],
     r"^search_space\.learning_rate: -1\.0 is not a valid train\.learning_rate"),
    (["search_space.epochs={type: uniform, low: 1, high: 4}"],
     r"^search_space\.epochs: epochs is a whole number, got a uniform distribution"),
    (["search_space.epochs={type: choice, values: [5, a]}"],
     r"^search_space\.epochs: 'a' is not a valid train\.epochs"),
    (["objective={metric: val_accuracy, mode: min}"],
     r"^objective\.mode: val_accuracy is better when higher, got mode='min'; use mode: max"),
    (["scheduler={name: hyperband}", "output.checkpoint_every=2"],
     r"^output\.checkpoint_every: HyperBand pauses trials"),
    (["output.checkpoint_every=0"],
     r"^output\.checkpoint_every: checkpoint_every is auto or a whole number of epochs >= 1, got 0"),
    (["output.checkpoint_every=often"], r"^output\.checkpoint_every: .*got 'often'; use auto"),
    (["output.checkpoint_every=1.5"], r"^output\.checkpoint_every: .*got 1\.5; use auto"),
    (["output.keep_checkpoints=best"],
     r"^output\.keep_checkpoints: input should be 'all' or 'best_trials', got 'best'"),
    (["search_space.median={type: uniform, low: 2, high: 1}"], r"^search_space\.median: uniform needs low < high"),
    (["scheduler={name: hyperband}", "search.max_concurrent=2"],
     r"^search\.max_concurrent: synchronous HyperBand must create every trial of a bracket"),
]


@pytest.mark.parametrize("overrides, pattern", CASES, ids=[" ".join(c[0])[:50] for c in CASES])
def test_bad_input_message(tmp_path, overrides, pattern):
    spec = tiny_spec(tmp_path)
    del spec["search"]["max_concurrent"]  # a user's default: the overrides may pick PBT
    with pytest.raises(SpecError, match=pattern):
        prepare(as_experiment(spec, overrides))


def test_several_problems_reported_together(tmp_path):
    with pytest.raises(SpecError) as info:
        as_experiment(tiny_spec(tmp_path), ["resources.cpu=0", "search.num_samples=0"])
    lines = str(info.value).splitlines()
    assert any(line.startswith("resources.cpu") for line in lines)
    assert any(line.startswith("search.num_samples") for line in lines)


def test_yaml_syntax_error_names_the_line(tmp_path):
    spec = tmp_path / "broken.yaml"
    spec.write_text("name: x\nsearch:\n  algorithm: random\n   num_samples: 3\n")
    with pytest.raises(SpecError, match=r"broken\.yaml: YAML syntax error at line 4"):
        as_experiment(spec)


def test_bad_override_syntax(tmp_path):
    with pytest.raises(SpecError, match=r"^--set: an override must look like key\.path=value"):
        as_experiment(tiny_spec(tmp_path), ["search.num_samples"])


def test_valid_spec_passes_every_check(tmp_path):
    experiment = as_experiment(tiny_spec(tmp_path))
    dataset = prepare(experiment)
    assert dataset.info.task == "multiclass"
    assert re.fullmatch(r".*/results/tiny", str(experiment_storage(experiment).local_dir))
