"""Markdown and self-contained HTML (images embedded) from a built report."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import markdown as md_lib
import numpy as np
import pandas as pd

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
              "Permutation importance of a random-forest surrogate fitted on configuration → best "
              "objective up to one common epoch"
              + (f" (epoch {report.importance.at_epoch}, reached by the {report.importance.n_trials} "
                 "trials used)" if report.importance.at_epoch else "")
              + ", so that trials the scheduler stopped early are compared at the same budget "
              "(method: `tunefleet/reports/importance.py`)."
              + (f" Out-of-bag R² of the surrogate: {report.importance.surrogate_r2:.2f}."
                 if report.importance.surrogate_r2 is not None else "")
              + (f" Each tree of the forest was fitted on a bootstrap sample of "
                 f"{report.importance.tree_samples} of the {report.importance.n_trials} trials."
                 if report.importance.tree_samples else ""), ""]
    if report.importance.caveat:
        lines += [f"Caution: {_esc(report.importance.caveat)}.", "{: .caveat}", ""]
    if report.importance.names:
        lines += [_table(report.importance.as_frame()), "", image("importance", "importance"), ""]
    lines += ["Objective against each hyperparameter:", "", image("effects", "effects"), "",
              image("parallel", "parallel coordinates"), "", "## Trials", "",
              "The 20 best (all of them in `trials.csv`, every epoch in `history.csv`):", ""]
    cols = ["trial_id", *study.hyperparameters, "status", "epochs_trained", f"best_{study.objective}",
            *([f"std_{study.objective}"] if f"std_{study.objective}" in study.trials else []),
            "time_s"]
    top = study.trials.sort_values(f"best_{study.objective}", ascending=study.mode == "min").head(20)
    lines += [_table(top[cols]), ""]
    return "\n".join(lines)


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
