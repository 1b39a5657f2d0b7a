"""The `tunefleet` command: run a study from a spec, or preview what it would do."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, List, Optional

import typer
from rich.console import Console
from rich.table import Table

from .spec import SpecError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Hyperparameter tuning of Keras models on Ray Tune.")
err = Console(stderr=True)
out = Console()

SetOption = typer.Option(None, "--set", help="Override a spec field: --set search.num_samples=8")
VerboseOption = typer.Option(False, "--verbose", help="Show Ray Tune's own reporter (a result "
                             "table per trial) instead of tunefleet's compact view.")


def _fail(exc: SpecError) -> None:
    err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _overrides(values: Optional[List[str]], address: Optional[str]) -> list[str]:
    result = list(values or [])
    if address:
        result.append(f"cluster.address={address}")
    return result


@app.command()
def run(spec: Path = typer.Argument(..., help="Experiment spec (YAML)."),
        set_: Optional[List[str]] = SetOption,
        address: Optional[str] = typer.Option(None, help="Ray address: local, auto, host:port."),
        overwrite: bool = typer.Option(False, help="Replace an existing study directory."),
        resume: bool = typer.Option(False, help="Continue the existing study directory of SPEC "
                                    "(as `tunefleet resume`); start it if there is none."),
        report: bool = typer.Option(True, help="Write the report (DIR/report/) at the end."),
        verbose: bool = VerboseOption) -> None:
    """Run the study described by SPEC, print the best configuration, write the report."""
    from .storage import experiment_storage
    from .study.runner import as_experiment, resume as resume_study, run as run_study

    try:
        if resume and overwrite:
            raise SpecError("--resume", "and --overwrite contradict each other",
                            fix="pass one of them")
        if resume:
            experiment = as_experiment(spec, _overrides(set_, address))
            if experiment_storage(experiment).read_text("spec.yaml") is not None:
                # --set and --address apply as to `tunefleet resume`: refused where they cannot.
                _finish(resume_study(experiment_storage(experiment), _overrides(set_, address),
                                     spec=experiment, verbose=verbose), report)
                return
        result = run_study(spec, _overrides(set_, address), overwrite=overwrite, verbose=verbose)
    except SpecError as exc:
        _fail(exc)
    _finish(result, report)


@app.command("submit")
def submit_cmd(spec: Path = typer.Argument(..., help="Experiment spec (YAML); its directory "
                                           "travels with the job."),
               address: str = typer.Option(..., help="The cluster's dashboard, through an SSH "
                                            "tunnel: http://127.0.0.1:8265."),
               set_: Optional[List[str]] = SetOption,
               wait: bool = typer.Option(False, help="Stream the job's logs until it ends and "
                                         "exit with its status."),
               driver_cpus: float = typer.Option(1.0, help="CPUs reserved for the study's "
                                                 "driver on the cluster."),
               driver_gpus: float = typer.Option(0.0, help="GPUs reserved for the driver (the "
                                                 "report evaluates the best model there)."),
               pip: Optional[List[str]] = typer.Option(None, help="Extra pip packages for the "
                                                       "job's environment (repeatable).")) -> None:
    """Submit the study to a Ray cluster as a Ray job (Ray's Job Submission API)."""
    from .cluster.submit import exposed_dashboard, follow_job, submit_study

    warning = exposed_dashboard(address)
    if warning:
        err.print(warning, style="yellow", markup=False)
    try:
        job = submit_study(spec, address, list(set_ or []), driver_cpus=driver_cpus,
                           driver_gpus=driver_gpus, pip=list(pip or []) or None)
    except SpecError as exc:
        _fail(exc)
    out.print(f"submitted job [bold]{job.job_id}[/] to {job.address}: {job.entrypoint}")
    for what, command in job.commands().items():
        out.print(f"  {what:7s} {command}")
    if wait:
        status = follow_job(job, typer.echo)
        out.print(f"job {job.job_id}: {status}")
        raise typer.Exit(0 if status == "SUCCEEDED" else 1)


@app.command("resume")
def resume_cmd(study_dir: str = typer.Argument(..., help="The study's directory or URI "
                                               "(output.storage/<name>) whose driver died."),
               address: Optional[str] = typer.Option(None, help="Ray address to continue on: "
                                                     "local, auto, host:port."),
               set_: Optional[List[str]] = typer.Option(
                   None, "--set", help="Change the cluster, the failure policy, the time "
                   "budget, or add trials: --set search.num_samples=40 (only cluster.*, "
                   "failure.max_consecutive, search.num_samples, search.time_budget_s)."),
               report: bool = typer.Option(True, help="Write the report at the end."),
               verbose: bool = VerboseOption) -> None:
    """Continue a study whose driver died or was stopped, or add trials to a finished one
    (--set search.num_samples=N): finished trials are kept, the others continue from their
    last checkpoint, and the searcher and scheduler carry on. Its storage is read (and
    unpickled) as code: resume only studies you trust."""
    from .study.runner import resume as resume_study

    try:
        result = resume_study(study_dir, _overrides(set_, address), verbose=verbose)
    except SpecError as exc:
        _fail(exc)
    _finish(result, report)


def _finish(result, report: bool) -> None:
    """Print the summary, write the report, and exit non-zero if the study did not succeed."""
    from .study.budget import spent_search_budget
    from .study.failure_policy import budget_spent

    _print_summary(result)
    if report and result.summary.get("best"):
        _report_or_warn(result.location or str(result.path), result.study)
    stopped = result.summary.get("stopped")
    # A planned end: the study is what its time budget or its search.budget bought.
    planned = budget_spent(stopped) or spent_search_budget(stopped)
    if planned:
        err.print(f"[bold]study ended[/]: {stopped}")
    elif stopped:
        err.print(f"[bold red]study stopped[/]: {stopped}")
        raise typer.Exit(1)
    if result.finished == 0 and planned and result.summary.get("best"):
        # Every trial was still training when the budget ran out: the study still has a best
        # (of epochs trained), which is what the budget bought.
        err.print("[bold]no trial trained to its end within the budget[/]: the best is of a "
                  "trial the budget stopped")
    elif result.finished == 0:
        err.print("[bold red]no trial finished[/]: see the reasons above and in "
                  f"{result.path / 'trials.csv'}")
        raise typer.Exit(1)


@app.command("report")
def report_cmd(dirs: List[str] = typer.Argument(..., help="Study directories or URIs "
                                              "(output.storage/<name>)."),
               out_dir: Optional[Path] = typer.Option(None, "--out", help="Where a comparison "
                                                      "report goes (default ./comparison)."),
               retrain: bool = typer.Option(False, help="Retrain the best configuration on "
                                            "train+validation instead of restoring its checkpoint."),
               target: Optional[float] = typer.Option(None, help="Objective value for 'time to "
                                                      "target' in comparisons.")) -> None:
    """Report one study (tables, test metrics, plots, importance), or compare several."""
    from .reports import build_comparison_report, build_study_report

    try:
        studies = []  # each loaded once, for its report and the comparison
        for directory in dirs:
            built = build_study_report(directory, retrain=retrain)
            studies.append(built.study)
            typer.echo(f"report: {built.files['html']}")
            if built.uploaded_to:
                typer.echo(f"copied to: {built.uploaded_to}")
            if built.test is not None:
                typer.echo("test: " + ", ".join(f"{k} {v:.4f}" for k, v in built.test.metrics.items()))
            elif built.test_note:  # why the best model was not scored (also in the report)
                typer.echo(f"test: not evaluated: {built.test_note}", err=True)
        if len(dirs) > 1:
            where = out_dir or Path("comparison")
            build_comparison_report(studies, where, target=target)
            typer.echo(f"comparison: {where / 'report.html'}")
    except SpecError as exc:
        _fail(exc)


@app.command()
def compare(spec: Path = typer.Argument(..., help="Comparison spec (YAML): base, variants, seeds."),
            set_: Optional[List[str]] = SetOption,
            overwrite: bool = typer.Option(False, help="Replace existing study directories.")) -> None:
    """Run studies that differ in searcher, scheduler and seed, then compare them."""
    from .study.comparison import run_comparison

    try:
        where, comparison = run_comparison(spec, set_, overwrite=overwrite)
    except SpecError as exc:
        _fail(exc)
    table = comparison.table
    typer.echo(table.to_string(index=False))
    typer.echo(f"comparison: {where / 'report.html'}")


def _report_or_warn(path: str, study: Any = None) -> None:
    """The study's results stand even if its report fails: say so instead of crashing.
    ``study``: the study as the run's summary loaded it, so that it is not read again."""
    from .reports import build_study_report

    try:
        built = build_study_report(study if study is not None else path)
    except Exception as exc:  # noqa: BLE001 -- a report bug must not fail a finished study
        err.print(f"[yellow]warning:[/] the report failed ({type(exc).__name__}: {exc}); "
                  f"results are in {path}; retry with `tunefleet report {path}`")
        return
    if built.test is not None:
        metrics = ", ".join(f"{k} {v:.4f}" for k, v in list(built.test.metrics.items())[:4])
        out.print(f"best model on the test split: {metrics}", highlight=False)
    out.print(f"report: {built.files['html']}", highlight=False)
    if built.uploaded_to:
        out.print(f"copied to: {built.uploaded_to}", highlight=False)


@app.command()
def preview(spec: Path = typer.Argument(..., help="Experiment spec (YAML)."),
            set_: Optional[List[str]] = SetOption,
            address: Optional[str] = typer.Option(None, help="Ray address.")) -> None:
    """Validate SPEC and print the plan (trials, epochs, cuts, resources) without training."""
    from .study.preview import collect_plan, render_plan
    from .study.runner import as_experiment

    try:
        plan = collect_plan(as_experiment(spec, _overrides(set_, address)))
    except SpecError as exc:
        _fail(exc)
    typer.echo(render_plan(plan))


def _print_summary(result) -> None:
    summary = result.summary
    counts = summary["trials"]
    table = Table(title=f"{summary['name']}: {counts['total']} trials in "
                        f"{summary['wall_time_s']:.1f} s, {summary['epochs_total']} epochs",
                  show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("trials", ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items()
                                      if k != "total" and v))
    best = summary.get("best")
    if best:
        objective = summary["objective"]["metric"]
        table.add_row(f"best {objective}",
                      f"{best['metrics'].get(objective):.4f} (trial {best['trial_id']}, "
                      f"epoch {best['epoch']})")
        for key, value in best["config"].items():
            table.add_row(f"  {key}", f"{value:.4g}" if isinstance(value, float) else str(value))
    failures = result.trials[result.trials["status"].isin(["errored", "failed"])]
    for _, row in failures.iterrows():
        table.add_row(f"{row['status']} {row['trial_id']}", str(row["reason"]))
    table.add_row("results", result.summary.get("location") or str(result.path))
    out.print(table)


def main() -> None:
    """Console-script entry point."""
    # A `module:function` builder in the current directory is found by the study itself
    # (study/runner.py appends the directory, only for a spec that names one).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter
    app()


if __name__ == "__main__":
    main()
