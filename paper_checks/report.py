"""Check reports: a terminal table, a JSON file and a Markdown file."""

from __future__ import annotations

import json
from pathlib import Path

from .output import to_jsonable
from .registry import CheckResult, RunSummary


def _fmt(value: object, width: int = 28) -> str:
    """Compact cell text: floats to 6 digits; a dict shows its first entry and how many more."""
    if isinstance(value, dict) and value:
        key, first = next(iter(value.items()))
        more = f" (+{len(value) - 1})" if len(value) > 1 else ""
        text = f"{key}={_fmt(first, width)}{more}"
    elif isinstance(value, float):
        text = f"{value:.6g}"
    else:
        text = str(value) if value is not None else "-"
    return text if len(text) <= width else text[: width - 1] + "~"


def table(summary: RunSummary) -> str:
    """Plain-text table: id, status, verdict, measured vs expected, provenance [spec tag], seconds."""
    header = f"{'id':<14} {'status':<6} {'verdict':<9} {'measured':<24} {'expected':<24} {'provenance':<30} {'s':>7}"
    lines = [header, "-" * len(header)]
    for r in summary.results:
        prov = f"{r.provenance} {r.spec_tag}"
        lines.append(
            f"{r.id:<14} {r.status:<6} {(r.verdict or '-'):<9} {_fmt(r.measured, 24):<24} {_fmt(r.expected, 24):<24} "
            f"{_fmt(prov, 30):<30} {r.seconds:>7.2f}"
        )
        if r.status != "pass" and r.detail:
            lines.append(f"{'':<14} -> {r.detail}")
    c = summary.counts
    lines.append(f"\n{c['pass']} passed, {c['fail']} failed, {c['skip']} skipped")
    return "\n".join(lines)


def write_json(summary: RunSummary, path: str | Path) -> None:
    payload = {"counts": summary.counts, "results": [r.as_dict() for r in summary.results]}
    Path(path).write_text(json.dumps(to_jsonable(payload), indent=2, allow_nan=False))


def _md_row(r: CheckResult) -> str:
    cells = [r.id, r.status, r.verdict or "-", r.statement, f"{r.provenance} `{r.spec_tag}`", r.method,
             _fmt(r.measured, 60), _fmt(r.expected, 60), _fmt(r.tolerance, 30), f"{r.seconds:.2f}"]
    if r.counterexample is not None:
        cells[3] += f" (counterexample: {_fmt(r.counterexample, 120)})"
    if r.status == "skip":
        cells[3] += f" (skipped: {r.detail})"
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def write_markdown(summary: RunSummary, path: str | Path) -> None:
    c = summary.counts
    lines = [
        "# collapsekit check report",
        "",
        f"{c['pass']} passed, {c['fail']} failed, {c['skip']} skipped.",
        "",
        "| id | status | verdict | statement | provenance | method | measured | expected | tolerance | s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [_md_row(r) for r in summary.results]
    Path(path).write_text("\n".join(lines) + "\n")
