"""Markdown and self-contained HTML (images embedded) from a built report."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any, Optional

import markdown as md_lib
import numpy as np
import pandas as pd

from .importance import EPOCH_AXIS

__all__ = ["write_study_documents", "write_comparison_documents", "to_html_page"]

_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222}table{border-collapse:collapse;margin:1em 0;font-size:14px}td,th{border:1px solid #ccc;
padding:3px 8px;text-align:right}th{background:#f3f3f3}img{max-width:100%;display:block;
margin:1em 0}.caveat{color:#a15c00}"""
# Lets a browser test (or a person) see that every embedded image decoded: "decoded/total",
# polled until all are in or 4 s have passed.
_IMAGE_CHECK = """<script>(function(){var t0=Date.now();function check(){var i=[].slice.call(
document.images),ok=i.filter(function(x){return x.complete&&x.naturalWidth>0}).length;
if(ok<i.length&&Date.now()-t0<4000){setTimeout(check,100);return}
document.body.setAttribute('data-images-loaded',ok+'/'+i.length)}
window.addEventListener('load',check)})();</script>"""


# Characters that Markdown or its tables would read as syntax, as HTML entities: data (class
# names from a CSV, hyperparameter values, error messages) is shown, never interpreted.
_MARKDOWN_SYNTAX = str.maketrans({"|": "&#124;", "`": "&#96;", "*": "&#42;", "[": "&#91;",
                                  "]": "&#93;", "\\": "&#92;", "\n": " "})


def _esc(value: Any) -> str:
    """Text from data, safe inside Markdown and the HTML made from it."""
    return html.escape(str(value), quote=False).translate(_MARKDOWN_SYNTAX)


def _fmt(value: Any) -> Any:
    if value is pd.NA:  # an unused integer hyperparameter (Int64 column): shown as NaN was
        value = float("nan")
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (bool, int, np.integer)) or value is None:
        return value
    return _esc(value)


def _table(frame: pd.DataFrame) -> str:
    """A Markdown table whose cells and headers are escaped text (numbers as numbers)."""
    frame = frame.map(_fmt)
    frame.columns = [_esc(c) for c in frame.columns]
    return frame.to_markdown(index=False)


def _markdown_to_html(text: str) -> str:
    """Markdown without raw HTML or links: whatever data reaches the text (a class name in a
    code span, a hyperparameter value) comes out as text, never as markup or a script."""
    converter = md_lib.Markdown(extensions=["tables", "attr_list"])
    converter.preprocessors.deregister("html_block")
    for pattern in ("html", "link", "reference", "short_reference", "autolink", "automail"):
        converter.inlinePatterns.deregister(pattern)
    return converter.convert(text)


def to_html_page(title: str, markdown_text: str, base: Path) -> str:
    """Convert the Markdown to HTML and embed every referenced PNG as a data URI."""
    body = _markdown_to_html(markdown_text)
    for png in sorted(base.glob("*.png")):
        data = base64.b64encode(png.read_bytes()).decode()
        body = body.replace(f'src="{png.name}"', f'src="data:image/png;base64,{data}"')
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{_CSS}</style></head><body>{body}{_IMAGE_CHECK}</body></html>")


def _study_markdown(report: Any) -> str:
    study, summary = report.study, report.study.summary

    def image(name: str, alt: str) -> str:
        return f"![{alt}]({name}.png)" if name in report.figures else ""

    exp = study.experiment
    counts = study.trials["status"].value_counts().to_dict()
    lines = [f"# {_esc(exp.name)}", "",
             f"Search **{exp.search.algorithm}**, scheduler **{exp.scheduler.name}**, objective "
             f"**{_esc(study.objective)}** ({study.mode}). {len(study.trials)} trials: "
             + ", ".join(f"{v} {_esc(k).replace('_', ' ')}" for k, v in counts.items())
             + (f"; wall time {summary['wall_time_s']:.1f} s" if "wall_time_s" in summary else "")
             + f"; {study.epochs_run} epochs trained.", ""]
    best = study.best_trial()
    if best is not None:
        spread = best.get(f"std_{study.objective}")
        executions = exp.search.executions_per_trial
        value = f"**{best[f'best_{study.objective}']:.4f}**" + (
            f" ± {spread:.4f} (mean ± standard deviation of {executions} executions)"
            if spread is not None and pd.notna(spread) else "")
        used = [h for h in study.hyperparameters if pd.notna(best[h])]
        lines += ["## Best configuration", "",
                  (f"Trial `{best['trial_id']}`, best {_esc(study.objective)} "
                   f"{value} at epoch {int(best['best_epoch'])}."), "",
                  _table(pd.DataFrame({"hyperparameter": used,
                                       "value": [best[h] for h in used]})), ""]
    if getattr(report, "schedules", None) is not None and not report.schedules.rows.empty:
        from .schedules import schedule_markdown

        lines += schedule_markdown(report.schedules, _table,
                                   image("schedules", "hyperparameter schedules"))
    if report.test is not None:
        t = report.test
        lines += ["## Best model on the held-out test split", "",
                  (f"{t.n_test} test examples, never seen while tuning. Model from "
                   f"{_esc(t.source)}; exported as `best_model.keras`."), "",
                  _table(_test_table(t)), ""]
        if getattr(t, "model_usage", ""):
            lines += ["### Predicting with `best_model.keras`", "", t.model_usage, ""]
        if t.per_class:
            per_class = pd.DataFrame(t.per_class).T.reset_index().rename(columns={"index": "class"})
            lines += ["### Per class", "", _table(per_class), "", image("confusion", "confusion matrix"), ""]
    if report.test_note:
        lines += ["## Best model on the held-out test split", "", f"Not evaluated: {_esc(report.test_note)}.", ""]
    lines += ["## How the trials learned", "", image("curves", "curves") or "No trial reported a result.", "",
              "Best objective so far, against wall time and against epochs trained in total:", "",
              image("anytime", "anytime"), "",
              "## Which hyperparameters mattered", "",
              *_importance_section(report.importance, image("importance", "importance"),
                                   study.objective)]
    lines += ["Objective against each hyperparameter:", "", image("effects", "effects"), "",
              image("parallel", "parallel coordinates"), "", "## Trials", "",
              "The 20 best (all of them in `trials.csv`, every epoch in `history.csv`):", ""]
    cols = ["trial_id", *study.hyperparameters, "status", "epochs_trained", f"best_{study.objective}",
            *([f"std_{study.objective}"] if f"std_{study.objective}" in study.trials else []),
            "time_s"]
    top = study.trials.sort_values(f"best_{study.objective}", ascending=study.mode == "min").head(20)
    lines += [_table(top[cols]), ""]
    return "\n".join(lines)


def _percent(value: Optional[float]) -> str:
    return "—" if value is None or pd.isna(value) else f"{value:.1%}"


def _importance_section(info: Any, image: str, objective: str) -> list[str]:
    """The importance section (tunefleet/reports/importance.py): cautions first, then the
    ranking, how to read it, and training length apart."""
    lines = []
    if info.caveat:
        lines += [f"Caution: {_esc(info.caveat)}.", "{: .caveat}", ""]
    if not (info.names or info.budget_names):
        return lines  # nothing computed: the caution says why
    with_fanova = bool(info.fanova_trials)
    if info.names:
        table = pd.DataFrame({"hyperparameter": info.names, "share at each epoch": [
            f"{share:.1%} ± {std:.1%}" for share, std in zip(info.share, info.std, strict=True)]})
        if with_fanova:
            table["fANOVA at full budget"] = [_percent(v) for v in info.fanova]
        lines += [_table(table), "", image, ""]
    lines += _importance_method(info, objective)
    if info.budget_names:
        table = pd.DataFrame({"training length": info.budget_names,
                              "share against the hyperparameters": [
                                  _percent(v) for v in info.budget_share]})
        if with_fanova:
            table["fANOVA at full budget"] = [_percent(v) for v in info.budget_fanova]
        lines += [_budget_text(info), "", _table(table), ""]
    return lines


def _importance_method(info: Any, objective: str) -> list[str]:
    """How the importance was measured, in words."""
    text = ("**Share at each epoch**: a random-forest surrogate is fitted on every epoch of "
            f"every trial, (configuration, epoch) → {_esc(objective)}, so trials the scheduler "
            "stopped early count with the epochs they trained. A hyperparameter's share is how "
            "much the surrogate's out-of-sample R² drops when its values are shuffled among the "
            "trials that reached the same epoch"
            + (f", averaged over {info.n_epochs} epochs that each weigh the same" if info.n_epochs > 1
               else "") + ", as a share of all the hyperparameters' drops (training length "
            "apart); ± is the spread over repeated shuffles (method: "
            "`tunefleet/reports/importance.py`).")
    if info.surrogate_r2 is not None:
        text += (f" Out-of-sample R² at a fixed epoch: {info.surrogate_r2:.2f} (the part of the "
                 "differences between trials the surrogate predicts for trials it never saw).")
    if info.tree_samples:
        text += (f" Each tree of the forest was fitted on a bootstrap sample of {info.tree_samples}"
                 f" of the {info.n_trials} trials' {info.n_rows} epoch rows.")
    lines = [text, ""]
    if info.fanova_trials:
        budget = f"epoch {info.at_epoch}" if info.at_epoch else "their own `epochs`"
        sample = (f"; fitted on a random {info.fanova_trials} of them"
                  if info.fanova_trials < info.n_completed else "")
        searched = [n for n in info.budget_names if n != EPOCH_AXIS]
        lines += [(f"**fANOVA at full budget**: the fraction of the variance of the best "
                   f"{_esc(objective)} that each hyperparameter explains alone (fANOVA, "
                   f"Optuna's evaluator; log-scale ones on a log scale) over the "
                   f"{info.n_completed} completed trials, those that trained to the full "
                   f"budget ({budget}) or stopped early by themselves{sample}. Main effects "
                   f"explain {info.fanova_main_effects:.0%} of it; the rest is interactions "
                   "between hyperparameters."
                   + (f" Fractions are of the whole variance, {', '.join(f'`{_esc(n)}`' for n in searched)} "
                      "included, while the shares leave training length out: the two columns "
                      "need not agree." if searched else "")
                   + " A dash marks what fANOVA did not assess"
                   + (": the epoch axis, and what the note names." if info.budget_names
                      else ": the note says why.")), ""]
    if info.fanova_note and info.fanova_trials:
        lines += [f"Note: {_esc(info.fanova_note)}.", ""]
    leader = info.fanova_leader  # a disagreement only if fANOVA assessed the ranking's first
    if leader is not None and info.names and leader != info.names[0] and info.fanova[0] is not None:
        lines += [(f"The two disagree on what matters most: **{_esc(info.names[0])}** at each "
                   f"epoch, **{_esc(leader)}** at the full budget. Completed trials are the ones "
                   "the scheduler kept: under ASHA or HyperBand, those that did well early."), ""]
    return lines


def _budget_text(info: Any) -> str:
    """What the budget rows mean."""
    searched = [n for n in info.budget_names if n != EPOCH_AXIS]
    return ("**Budget** (training length, ranked apart: learning curves rise with epochs and "
            f"would swamp the hyperparameters): `{EPOCH_AXIS}` is the epoch axis, how far along "
            "its learning curve a trial was"
            + (f"; {', '.join(f'`{_esc(n)}`' for n in searched)} is shuffled together with it"
               if searched else "")
            + ". Its share is the R² the surrogate loses when it is shuffled across epochs "
            "(every epoch weighing the same), over that loss plus the hyperparameters' losses "
            "on the same scale (near 100%: how long a trial had trained explains far more of "
            "the differences than any hyperparameter).")


def _test_table(t: Any) -> pd.DataFrame:
    """Test metrics; with several executions, mean ± standard deviation over them."""
    if not t.metrics_std:
        return pd.DataFrame({"metric": list(t.metrics), "value": list(t.metrics.values())})
    return pd.DataFrame({"metric": list(t.metrics),
                         "mean ± std": [f"{v:.4f} ± {t.metrics_std[m]:.4f}"
                                        for m, v in t.metrics.items()]})


def write_study_documents(report: Any) -> dict[str, Path]:
    """report.md (images beside it) and report.html (self-contained)."""
    text = _study_markdown(report)
    md_path, html_path = report.out_dir / "report.md", report.out_dir / "report.html"
    md_path.write_text(text)
    html_path.write_text(to_html_page(report.study.experiment.name, text, report.out_dir))
    return {"markdown": md_path, "html": html_path}


def write_comparison_documents(title: str, text: str, out_dir: Path) -> dict[str, Path]:
    """The comparison's Markdown and HTML."""
    md_path, html_path = out_dir / "report.md", out_dir / "report.html"
    md_path.write_text(text)
    html_path.write_text(to_html_page(title, text, out_dir))
    return {"markdown": md_path, "html": html_path}
