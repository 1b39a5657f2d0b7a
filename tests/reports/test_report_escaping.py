"""Text that comes from data (CSV class names, hyperparameter values) is shown in report.html,
never run: a real study on a CSV whose class label is a script."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import tiny_spec
from tunefleet import run
from tunefleet.reports import build_study_report
from tunefleet.reports.render import _table, to_html_page

pytestmark = pytest.mark.slow

# The backticks would close a Markdown code span around the label and let the script out.
SCRIPT = "x`<script>alert(1)</script>`"


def test_csv_class_names_are_escaped_in_the_html_report(ray_local, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3))
    labels = np.where(x[:, 0] > 0, SCRIPT, "plain")
    csv = tmp_path / "evil.csv"
    pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "label": labels}).to_csv(csv, index=False)
    spec = tiny_spec(tmp_path, name="escaping",
                     data={"dataset": "csv", "path": str(csv), "target": "label"},
                     model={"builder": "mlp", "params": {"layers": 1, "units": 4}},
                     train={"epochs": 1, "batch_size": 32},
                     search_space={"activation": {"type": "grid", "values": ["relu"]}},
                     search={"algorithm": "grid"})
    study = run(spec)
    report = build_study_report(study.path)
    assert report.test is not None and SCRIPT in report.test.labels  # the label reached the report
    page = report.files["html"].read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert" not in page
    # report.md shows it as text too (outside code, where a reader copies it as written).
    assert "&#96;&lt;script&gt;alert(1)&lt;/script&gt;&#96;" in report.files["markdown"].read_text()


def test_raw_html_and_links_in_the_markdown_stay_text():
    page = to_html_page("t", "a <b>b</b> [c](javascript:alert(1)) `x`<script>alert(1)</script>`y`\n\n"
                        "<div>d</div>\n\n![alt](missing.png)", Path("/nonexistent"))
    body = page[page.index("<body>"):page.rindex("<script>(function")]
    assert "<b>" not in body and "<div>" not in body and "<a " not in body and "<script" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body and '<img alt="alt"' in body


def test_table_cells_and_headers_are_text_not_markup():
    frame = pd.DataFrame({"<b>name</b>": ["a|b", "<img src=x onerror=alert(1)>", "`x`"],
                          "value": [0.123456, 2, None]})
    text = _table(frame)
    assert "<img" not in text and "<b>" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text and "&lt;b&gt;name&lt;/b&gt;" in text
    # A '|' in a value would split the row into an extra column.
    rows = [line for line in text.splitlines() if line.startswith("|")]
    assert {line.count("|") for line in rows} == {3}
    assert "0.1235" in text and re.search(r"\|\s+2\s+\|", text)
