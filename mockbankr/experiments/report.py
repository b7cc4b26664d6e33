"""``report.html``: one self-contained page (nothing fetched) with inline SVG plots.

The plots are drawn with matplotlib (the ``mockbankr[experiments]`` extra) and embedded as
SVG text, with their text kept as text (``svg.fonttype = none``): every axis label is a
``<text>`` inside a group whose id ends in ``-xlabel`` or ``-ylabel``.

Example::

    html = render_report(results, Path("storm.toml").read_text())
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Callable
from typing import Any

from mockbankr.errors import ConfigError

__all__ = ["PLOTS", "render_report"]

#: The plots of a report, by id, in page order.
PLOTS = ("time-to-result", "requests-per-second", "spend", "polls-per-job")

_SPEND = (
    ("useful", "#2e7d32"),
    ("failed", "#9e9e9e"),
    ("duplicate", "#c62828"),
    ("abandoned", "#ef6c00"),
)


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise ConfigError(
            "the report's plots need matplotlib: pip install 'mockbankr[experiments]'"
            " (or pass --no-report)"
        ) from exc
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {"svg.fonttype": "none", "svg.hashsalt": "mockbankr", "figure.dpi": 72, "font.size": 10}
    )
    return plt


def _svg(plt: Any, plot_id: str, draw: Callable[[Any], tuple[str, str]]) -> str:
    fig, ax = plt.subplots(figsize=(7.0, 3.6))
    try:
        xlabel, ylabel = draw(ax)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.xaxis.label.set_gid(f"{plot_id}-xlabel")
        ax.yaxis.label.set_gid(f"{plot_id}-ylabel")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        fig.tight_layout()
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    finally:
        plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _cdf(policies: list[dict[str, Any]]) -> Callable[[Any], tuple[str, str]]:
    def draw(ax: Any) -> tuple[str, str]:
        for p in policies:
            values = p["time_to_result"]
            tasks = max(1, p["metrics"]["tasks"])
            xs = [0.0, *values]
            ys = [0.0, *((i + 1) / tasks for i in range(len(values)))]
            ax.step(xs, ys, where="post", label=p["name"])
        ax.set_ylim(0, 1.02)
        return "seconds from asking to knowing the result (simulated)", "fraction of tasks answered"

    return draw


def _rate(policies: list[dict[str, Any]]) -> Callable[[Any], tuple[str, str]]:
    def draw(ax: Any) -> tuple[str, str]:
        for p in policies:
            counts = p["requests_per_s"]
            ax.plot(range(len(counts)), counts, label=p["name"], linewidth=1)
        return "simulated second of the run", "requests per simulated second"

    return draw


def _spend(policies: list[dict[str, Any]]) -> Callable[[Any], tuple[str, str]]:
    def draw(ax: Any) -> tuple[str, str]:
        names = [p["name"] for p in policies]
        bottom = [0.0] * len(policies)
        for kind, colour in _SPEND:
            heights = [p["metrics"]["usdc_split"][kind] for p in policies]
            ax.bar(names, heights, bottom=bottom, label=kind, color=colour)
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
        return "policy", "USDC spent"

    return draw


def _polls(policies: list[dict[str, Any]]) -> Callable[[Any], tuple[str, str]]:
    def draw(ax: Any) -> tuple[str, str]:
        top = max((max(p["polls"], default=0) for p in policies), default=0)
        bins = list(range(0, top + 2))
        for p in policies:
            ax.hist(p["polls"], bins=bins, histtype="step", label=p["name"], linewidth=1.2)
        return "status polls per job", "jobs"

    return draw


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.4g}"
    return html.escape(str(value))


_SUMMARY: tuple[tuple[str, Callable[[dict[str, Any]], Any]], ...] = (
    ("successes", lambda m: m["successes"]),
    ("jobs", lambda m: m["jobs_created"]),
    ("USDC spent", lambda m: m["usdc_spent"]),
    ("USDC wasted", lambda m: m["usdc_wasted"]),
    ("USDC / success", lambda m: m["usdc_per_success"]),
    ("result p50 s", lambda m: m["time_to_result_s"]["p50"]),
    ("result p99 s", lambda m: m["time_to_result_s"]["p99"]),
    ("detect p50 s", lambda m: m["detection_delay_s"]["p50"]),
    ("polls/job", lambda m: m["polls_per_job"]["mean"]),
    ("requests", lambda m: m["requests"]),
    ("peak req/s", lambda m: m["peak_requests_per_s"]),
    ("429s", lambda m: m["rate_limited"]),
    ("5xx", lambda m: m["server_errors"]),
    ("timeouts", lambda m: m["timeouts"]),
)


def summary_rows(results: dict[str, Any]) -> list[tuple[str, list[Any]]]:
    """``(policy, values)`` per policy, in :data:`_SUMMARY`'s column order."""
    return [(p["name"], [get(p["metrics"]) for _, get in _SUMMARY]) for p in results["policies"]]


def summary_headers() -> list[str]:
    return [name for name, _ in _SUMMARY]


def _verdict_cell(verdicts: Any) -> str:
    if not isinstance(verdicts, dict) or "checks" not in verdicts:
        return "not graded"
    failed = verdicts["failed_checks"]
    if not failed:
        return "all pass"
    return "fail: " + ", ".join(
        f"{check} ({verdicts['checks'][check]['fail']}/{verdicts['clients']})" for check in failed
    )


def render_report(results: dict[str, Any], experiment_text: str) -> str:
    """The whole page."""
    plt = _pyplot()
    policies = results["policies"]
    drawers = {
        "time-to-result": ("Time to result (CDF)", _cdf(policies)),
        "requests-per-second": ("Requests per simulated second", _rate(policies)),
        "spend": ("Spend: useful, failed, duplicate, abandoned", _spend(policies)),
        "polls-per-job": ("Polls per job", _polls(policies)),
    }
    figures = []
    for plot_id in PLOTS:
        title, draw = drawers[plot_id]
        svg = _svg(plt, plot_id, draw)
        figures.append(
            f'<figure id="{plot_id}"><figcaption>{html.escape(title)}</figcaption>\n{svg}</figure>'
        )
    head = "".join(f"<th>{html.escape(h)}</th>" for h in ["policy", *summary_headers(), "verdicts"])
    body = "".join(
        "<tr><th>"
        + html.escape(name)
        + "</th>"
        + "".join(f"<td>{_cell(v)}</td>" for v in values)
        + f"<td>{html.escape(_verdict_cell(p.get('verdicts')))}</td></tr>"
        for (name, values), p in zip(summary_rows(results), policies, strict=True)
    )
    notes = "".join(
        f"<li>{html.escape(p['name'])}: {html.escape(p['journal']['note'])}</li>"
        for p in policies
        if p.get("journal", {}).get("note")
    )
    name = results["experiment"]["experiment"]["name"]
    title = html.escape(f"mockbankr experiment: {name}")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title>\n<style>{_CSS}</style></head><body>\n"
        f"<h1>{title}</h1>\n<p>Mode: {html.escape(results['mode'])};"
        f" {results['tasks']} tasks per policy;"
        f" mockbankr {html.escape(results['mockbankr_version'])}."
        "</p>\n<h2>Summary</h2>\n"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>\n"
        + (f'<ul class="notes">{notes}</ul>\n' if notes else "")
        + "<h2>Plots</h2>\n"
        + "\n".join(figures)
        + "\n<h2>Experiment file</h2>\n<pre>"
        + html.escape(experiment_text)
        + "</pre>\n"
        "</body></html>\n"
    )


_CSS = re.sub(
    r"\s+",
    " ",
    """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.5em; text-align: right; }
thead th { background: #f3f3f3; }
tbody th { text-align: left; }
figure { margin: 1.5em 0; }
figcaption { font-weight: bold; margin-bottom: 0.3em; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; }
""",
).strip()
