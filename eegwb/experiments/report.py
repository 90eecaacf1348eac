"""The autopsy report: one document, rendered as markdown and as self-contained HTML.

Every section (predictions, gradients, ...) returns a `Section`: its numbers, tables and
`Finding`s (a detected issue in plain words, with a concrete recommendation tied to it).
`AutopsyReport` puts a header (checkpoint, config, data, time, kernel path) and the
findings first, then each section with its numbers, tables and charts. Charts are Altair
(inline SVG in the HTML via vl-convert, SVG files beside the markdown); per-channel
importance is drawn as an MNE topomap (mne.viz.plot_topomap, a base64 PNG in the HTML).
`log_report` records the files and headline numbers in MLflow through
`eegwb.train.tracking.Tracker`, as a child run of the checkpoint's run.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import polars as pl

from eegwb.atomic import OutputExistsError, atomic_write_bytes, atomic_write_text
from eegwb.train.tracking import Tracker
from eegwb.validation.quality_charts import topomap_figure

SEVERITY_ORDER = {"fail": 0, "warn": 1, "info": 2}
CHART_BUILDERS = {  # section -> "module:function" returning {name: altair chart}
    "predictions": "eegwb.experiments.predictions:prediction_charts",
    "gradients": "eegwb.experiments.gradients:gradient_charts",
    "activations": "eegwb.experiments.activations:activation_charts",
    "attributions": "eegwb.experiments.attributions:attribution_charts",
    "ablations": "eegwb.experiments.ablations:ablation_charts",
    "failures": "eegwb.experiments.failures:failure_charts",
}
TOPOMAP_TABLES = {"attributions": "per_channel", "ablations": "per_channel"}  # column `importance`
MAX_TABLE_ROWS = 15
REPORT_FILES = ("report.md", "report.html", "report.json")


@dataclass
class Finding:
    """A detected issue in plain words and what to do about it."""

    severity: Literal["info", "warn", "fail"]
    what: str
    recommendation: str


@dataclass
class Section:
    name: str  # "predictions", "gradients", ...
    title: str
    numbers: dict[str, Any]
    tables: dict[str, pl.DataFrame]
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # how to read the section
    hidden: tuple[str, ...] = ()  # tables shown only as charts (still in report.json)
    elapsed_s: float = 0.0


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "n/a"
        return f"{v:.4g}"
    return str(v)


def _md_table(frame: pl.DataFrame, limit: int | None = MAX_TABLE_ROWS) -> str:
    limit = limit or frame.height
    shown = frame.head(limit)
    lines = ["| " + " | ".join(shown.columns) + " |", "|" + "---|" * len(shown.columns)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in shown.iter_rows()]
    if frame.height > limit:
        lines.append(f"\n_{frame.height - limit} more rows in report.json_")
    return "\n".join(lines)


def _html_table(frame: pl.DataFrame, limit: int | None = MAX_TABLE_ROWS) -> str:
    limit = limit or frame.height
    shown = frame.head(limit)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in shown.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>"
        for row in shown.iter_rows()
    )
    more = (
        f"<p><em>{frame.height - limit} more rows in report.json</em></p>"
        if frame.height > limit
        else ""
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"


def numbers_frame(numbers: dict[str, Any]) -> pl.DataFrame:
    """A section's numbers as a (number, value) table, values to 4 significant digits."""
    return pl.DataFrame(
        {"number": list(numbers), "value": [_fmt(v) for v in numbers.values()]},
        schema={"number": pl.String, "value": pl.String},
    )


def chart_svg(chart: Any) -> str:
    """An Altair chart as an SVG string (vl-convert: no browser, no network)."""
    import vl_convert as vlc

    return vlc.vegalite_to_svg(chart.to_dict())


def topomap_png(values: dict[str, float], positions: dict[str, list[float]], title: str) -> bytes:
    """PNG bytes of an MNE topomap of per-channel values (eegwb.validation.quality_charts)."""
    import matplotlib.pyplot as plt

    fig = topomap_figure(values, positions, title=title, unit="importance")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def check_writable(out_dir: str | Path, overwrite: bool) -> None:
    """Refuse to replace an existing report unless asked (OutputExistsError names the file)."""
    existing = [Path(out_dir) / f for f in REPORT_FILES if (Path(out_dir) / f).exists()]
    if existing and not overwrite:
        raise OutputExistsError(
            f"{existing[0]}: an autopsy report is already there (use --overwrite)"
        )


@dataclass
class AutopsyReport:
    header: dict[str, Any]  # checkpoint, kind, config, data, split, time, kernel note, ...
    sections: dict[str, Section]
    positions: dict[str, list[float]] = field(default_factory=dict)  # channel -> unit-sphere xyz
    files: dict[str, Path] = field(default_factory=dict)  # filled by `write`
    run_id: str | None = None  # the MLflow run the report was logged to

    @property
    def findings(self) -> list[tuple[str, Finding]]:
        """(section name, finding), failures first."""
        out = [(s.name, f) for s in self.sections.values() for f in s.findings]
        return sorted(out, key=lambda sf: SEVERITY_ORDER[sf[1].severity])

    def numbers(self) -> dict[str, float]:
        """`section.number` -> value, finite numbers only (MLflow metrics)."""
        return {
            f"{s.name}.{k}": float(v)
            for s in self.sections.values()
            for k, v in s.numbers.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        }

    def charts(self) -> dict[str, Any]:
        """`section.name` -> Altair chart, for every section that has chart builders."""
        import importlib

        out = {}
        for s in self.sections.values():
            if s.name in CHART_BUILDERS:
                module, fn = CHART_BUILDERS[s.name].split(":")
                for name, chart in getattr(importlib.import_module(module), fn)(s).items():
                    out[f"{s.name}.{name}"] = chart
        return out

    def topomaps(self) -> dict[str, bytes]:
        """`section` -> topomap PNG of its per-channel importance (needs >= 3 placed channels)."""
        out = {}
        for name, table in TOPOMAP_TABLES.items():
            s = self.sections.get(name)
            if s is None or table not in s.tables:
                continue
            values = dict(s.tables[table].select("channel", "importance").iter_rows())
            try:
                out[name] = topomap_png(
                    values, self.positions, f"{s.title}: per-channel importance"
                )
            except ValueError:  # fewer than 3 channels with positions
                continue
        return out

    # ---- rendering ----------------------------------------------------------------------
    def _blocks(
        self, chart_keys: tuple[str, ...] = (), topo_keys: tuple[str, ...] = ()
    ) -> list[tuple]:
        h = self.header
        blocks: list[tuple] = [("h1", f"Model autopsy: {Path(str(h.get('checkpoint', ''))).name}")]
        blocks.append(
            (
                "table",
                numbers_frame({k: v for k, v in h.items() if k not in ("config", "kernel_note")}),
                None,
            )
        )
        if h.get("kernel_note"):
            blocks.append(("p", h["kernel_note"]))
        blocks.append(("h2", "Detected issues and recommendations"))
        if self.findings:
            blocks.append(
                (
                    "list",
                    [
                        f"**{f.severity.upper()}** ({sec}): {f.what} → *{f.recommendation}*"
                        for sec, f in self.findings
                    ],
                )
            )
        else:
            blocks.append(("p", "No issues detected by the checks run here."))
        for s in self.sections.values():
            blocks.append(("h2", s.title))
            blocks += [("p", n) for n in s.notes]
            blocks.append(("table", numbers_frame(s.numbers), None))
            for name, table in s.tables.items():
                if name not in s.hidden:
                    blocks += [("h3", name.replace("_", " ")), ("table", table)]
            blocks += [("chart", key) for key in chart_keys if key.startswith(s.name + ".")]
            if s.name in topo_keys:
                blocks.append(("topomap", s.name))
            if s.findings:
                blocks.append(
                    (
                        "list",
                        [
                            f"**{f.severity.upper()}**: {f.what} → *{f.recommendation}*"
                            for f in s.findings
                        ],
                    )
                )
            blocks.append(("p", f"_Section time: {s.elapsed_s:.1f} s._"))
        blocks += [
            ("h2", "Configuration"),
            ("code", json.dumps(h.get("config", {}), indent=1, default=str)),
        ]
        return blocks

    def to_markdown(self, chart_keys: tuple[str, ...] = (), topo_keys: tuple[str, ...] = ()) -> str:
        """Markdown; charts and topomaps named in the keys are linked from charts/."""
        out = []
        for kind, *rest in self._blocks(chart_keys, topo_keys):
            v = rest[0]
            if kind in ("h1", "h2", "h3"):
                out.append("#" * int(kind[1]) + " " + v)
            elif kind == "p":
                out.append(v)
            elif kind == "list":
                out.append("\n".join(f"- {item}" for item in v))
            elif kind == "table":
                out.append(_md_table(v, *rest[1:]))
            elif kind == "chart":
                out.append(f"![{v}](charts/{v}.svg)")
            elif kind == "topomap":
                out.append(f"![{v} topomap](charts/{v}.topomap.png)")
            elif kind == "code":
                out.append(f"```json\n{v}\n```")
        return "\n\n".join(out) + "\n"

    def to_html(
        self, svgs: dict[str, str] | None = None, pngs: dict[str, bytes] | None = None
    ) -> str:
        svgs, pngs = svgs or {}, pngs or {}

        def inline(text: str) -> str:  # **bold**, *em*, `code` of the plain sentences
            t = html.escape(text)
            t = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", t)
            t = re.sub(r"(?<![\w*])\*(.+?)\*(?!\w)", r"<em>\1</em>", t)
            t = re.sub(r"`(.+?)`", r"<code>\1</code>", t)
            return re.sub(r"(?<!\w)_(.+?)_(?!\w)", r"<em>\1</em>", t)

        body = []
        for kind, *rest in self._blocks(tuple(svgs), tuple(pngs)):
            v = rest[0]
            if kind in ("h1", "h2", "h3"):
                body.append(f"<{kind}>{html.escape(v)}</{kind}>")
            elif kind == "p":
                body.append(f"<p>{inline(v)}</p>")
            elif kind == "list":
                body.append("<ul>" + "".join(f"<li>{inline(i)}</li>" for i in v) + "</ul>")
            elif kind == "table":
                body.append(_html_table(v, *rest[1:]))
            elif kind == "chart" and v in svgs:
                body.append(f'<figure class="chart">{svgs[v]}</figure>')
            elif kind == "topomap" and v in pngs:
                b64 = base64.b64encode(pngs[v]).decode()
                body.append(
                    f'<figure><img alt="{v} topomap" src="data:image/png;base64,{b64}"></figure>'
                )
            elif kind == "code":
                body.append(f"<pre>{html.escape(v)}</pre>")
        style = (
            "body{font-family:sans-serif;max-width:1000px;margin:2em auto;line-height:1.4}"
            "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px "
            "6px;"
            "font-size:90%}pre{background:#f6f6f6;padding:.5em;overflow:auto;font-size:80%}"
        )
        title = html.escape(f"Model autopsy: {Path(str(self.header.get('checkpoint', ''))).name}")
        return (
            f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n"
        )

    def write(self, out_dir: str | Path, *, overwrite: bool = False) -> dict[str, Path]:
        """report.md (+ charts/*.svg, *.png), report.html (self-contained), report.json."""
        out = Path(out_dir)
        check_writable(out, overwrite)
        charts = self.charts()
        svgs = {k: chart_svg(c) for k, c in charts.items()}
        pngs = self.topomaps()
        files = {}
        for k, svg in svgs.items():
            files[f"charts/{k}.svg"] = atomic_write_text(out / "charts" / f"{k}.svg", svg)
        for k, png in pngs.items():
            files[f"charts/{k}.topomap.png"] = atomic_write_bytes(
                out / "charts" / f"{k}.topomap.png", png
            )
        files["report.md"] = atomic_write_text(
            out / "report.md", self.to_markdown(tuple(svgs), tuple(pngs))
        )
        files["report.html"] = atomic_write_text(out / "report.html", self.to_html(svgs, pngs))
        files["report.json"] = atomic_write_text(
            out / "report.json", json.dumps(self.to_json(), indent=1, default=str)
        )
        self.files = files
        return files

    def to_json(self) -> dict[str, Any]:
        return {
            "header": self.header,
            "findings": [{"section": s, **f.__dict__} for s, f in self.findings],
            "sections": {
                s.name: {
                    "numbers": s.numbers,
                    "tables": {k: t.to_dicts() for k, t in s.tables.items()},
                    "elapsed_s": s.elapsed_s,
                }
                for s in self.sections.values()
            },
        }


def log_report(
    report: AutopsyReport, *, run_id: str | None, tracking_uri: str | None, experiment: str
) -> str | None:
    """Log the report to MLflow as a child run of `run_id` (the checkpoint's run) through
    `Tracker`; never raises. Returns the autopsy run's id (None when tracking failed)."""

    tags = {"eegwb.autopsy_of": str(report.header.get("checkpoint", "")), "eegwb.kind": "autopsy"}
    if run_id:
        tags["mlflow.parentRunId"] = run_id  # MLflow's nesting tag: shown under the training run
    name = f"autopsy {Path(str(report.header.get('checkpoint', ''))).stem}"
    with Tracker(tracking_uri, experiment, run_name=name, tags=tags) as tracker:
        tracker.log_params(
            {
                "checkpoint": report.header.get("checkpoint"),
                "data": report.header.get("data"),
                "split": report.header.get("split"),
                "sections": ",".join(report.sections),
            }
        )
        tracker.log_metrics(report.numbers())
        for rel, path in report.files.items():
            tracker.log_artifact(path, str(Path("autopsy", rel).parent))
        if not report.files:  # not written to disk: keep the text at least
            tracker.log_text(report.to_markdown(), "autopsy/report.md")
        tracker.set_tags(
            {
                "eegwb.autopsy_findings": "; ".join(
                    f"{f.severity}: {f.what}" for _, f in report.findings
                )
                or "none"
            }
        )
        report.run_id = tracker.run_id
        return tracker.run_id
