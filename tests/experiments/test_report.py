"""report.html: self-contained HTML, one inline SVG per plot, each with labelled axes."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import html5lib
import pytest

from mockbankr.experiments import load_experiment
from mockbankr.experiments.output import write_outputs
from mockbankr.experiments.report import PLOTS
from tests.experiments.conftest import examples, run, shrunk

SVG = "{http://www.w3.org/2000/svg}"
XHTML = "{http://www.w3.org/1999/xhtml}"


def _label(svg: ET.Element, gid: str) -> str:
    groups = [g for g in svg.iter(f"{SVG}g") if g.get("id") == gid]
    assert len(groups) == 1, f"no group {gid}"
    return "".join("".join(t.itertext()) for t in groups[0].iter(f"{SVG}text")).strip()


@pytest.mark.parametrize("path", examples(), ids=lambda p: p.stem)
def test_each_shipped_example_renders_a_self_contained_report(path: Path, tmp_path: Path) -> None:
    spec = shrunk(load_experiment(path), agents=12)
    results, rows = run(spec)
    write_outputs(tmp_path, results, rows, path.read_text("utf-8"))
    page = (tmp_path / "report.html").read_text("utf-8")
    parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=True)
    document = parser.parse(page)  # raises on a parse error
    figures = [f for f in document.iter(f"{XHTML}figure")]
    assert [f.get("id") for f in figures] == list(PLOTS)
    for figure in figures:
        svgs = list(figure.iter(f"{SVG}svg"))
        assert len(svgs) == 1
        plot = figure.get("id")
        assert _label(svgs[0], f"{plot}-xlabel")
        assert _label(svgs[0], f"{plot}-ylabel")
    # Self-contained: nothing is fetched to view it.
    for attr in ("src", "href"):
        assert not [e for e in document.iter() if (e.get(attr) or "").startswith(("http", "//"))]
    assert "<script" not in page
    # The experiment file is on the page, escaped.
    assert "[experiment]" in page
    for policy in spec.policies:
        assert policy.name in page
