"""A sweep's W&B dashboard, built from code with ``wandb-workspaces`` (the optional ``[report]`` extra):
a Report for the sweep's group, and a saved workspace view of it.

The Report holds, in order: the verdict (the text of the sweep's ``summary.md``); the star-vs-sum panel (the
sweep's metric per swept-axis value and op, runs grouped by ``[*axes, op]``: mean with the std over seeds
as the spread); the per-epoch validation curves grouped by op (mean and std band); a parallel-coordinates
panel over every swept knob and the metric; a run comparer showing only the config keys that differ; the
summary run's table, figure and native gap chart (logged by ``wandb_runs.log_to_wandb``).

Everything here only builds objects: nothing talks to W&B until ``save`` (which needs a login).
``describe`` turns the objects into plain JSON from their attributes alone, because the library's own
serialisation (``Runset._to_model``) asks the W&B API for the project's id.

``python scripts/wandb_report.py SWEEP_DIR --project ENTITY/PROJECT [--workspace] [--dry-run]``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..errors import StarbenchError
from ..records import sweep_group
from .jobs import Job, load_jobs
from .summary import Summary, check_regime, row_label, summarize
from .sweep import sweep_baseline
from .wandb_charts import GAP_CHART, GAP_CI_CHART, numeric_axis, table_key

MD_FILE = "summary.md"
SUMMARY_RUN = "summary"  # name and job_type of the sweep's summary run (see wandb_runs.log_to_wandb)
# Keys the summary run logs (wandb_runs.log_to_wandb).
SUMMARY_TABLE, JOBS_TABLE, FIGURE_KEY = "summary/star_vs_sum", "summary/jobs", "summary/figure"
TITLE_MAX = 128  # wr.Report's limit
INSTALL_HINT = 'wandb-workspaces is not installed: pip install -e ".[report]"'


def _libs():
    try:
        import wandb_workspaces.reports.v2 as wr
        import wandb_workspaces.workspaces as ws
        from wandb_workspaces import expr
    except ImportError as e:
        raise StarbenchError(f"{INSTALL_HINT} ({e})") from e
    return wr, ws, expr


def parse_project(path: str) -> Tuple[str, str]:
    """"entity/project" -> ("entity", "project")."""
    entity, sep, project = (path or "").partition("/")
    if not sep or not entity or not project or "/" in project:
        raise StarbenchError(f"--project must be ENTITY/PROJECT, got '{path}'")
    return entity, project


def require_login() -> None:
    """Saving needs a W&B API key (``wandb login`` or ``WANDB_API_KEY``): fail before building anything remote."""
    import wandb
    try:
        wandb.Api()
    except Exception as e:  # wandb.errors.UsageError: no API key configured
        raise StarbenchError("saving a report needs a W&B login: run `wandb login` (or set WANDB_API_KEY); "
                             f"--dry-run shows the report without W&B ({type(e).__name__}: {e})") from e


# ----------------------------------------------------------------- what the sweep dir says


@dataclass
class SweepView:
    sweep_dir: Path
    group: str
    jobs: List[Job]
    summary: Summary
    verdict: str          # markdown, from summary.md
    curves: List[str]     # per-epoch history keys to plot: the metric first, then training losses


def _sections(md: str) -> List[Tuple[str, str]]:
    """summary.md as (heading, body) pairs at "## " level; the part before the first one has heading ""."""
    out: List[Tuple[str, List[str]]] = [("", [])]
    for line in md.splitlines():
        if line.startswith("## "):
            out.append((line[3:].strip(), []))
        else:
            out[-1][1].append(line)
    return [(h, "\n".join(body).strip()) for h, body in out]


def verdict_of(md: str) -> str:
    """The verdict of a summary.md: its title, source line and caveat, then its "Verdict" section, its pooled test,
    its per-row table and its trained-regime check (each where present, in that order); the whole file when it has
    none of them."""
    sections = _sections(md)
    head, rest = sections[0][1], sections[1:]
    picks = (lambda h: "verdict" in h.lower(), lambda h: h.lower().startswith("pooled"),
             lambda h: h.lower().startswith("by "), lambda h: h.lower().startswith("trained-regime"))
    chosen = [next(((h, b) for h, b in rest if pick(h)), None) for pick in picks]
    parts = [f"### {h}\n\n{b}".strip() for h, b in filter(None, chosen)]
    return "\n\n".join([head, *parts]).strip() if parts else md.strip()


def _curve_keys(jobs: Sequence[Job], metric: str) -> List[str]:
    keys = {k for j in jobs for row in (j.record.get("history") or []) if isinstance(row, dict) for k in row}
    losses = sorted(k for k in keys if k.startswith("train") and "loss" in k)
    return [metric, *losses]


def load_view(sweep_dir, metric: Optional[str] = None, reference: Optional[str] = None) -> SweepView:
    sweep_dir = Path(sweep_dir)
    jobs = load_jobs(sweep_dir)
    if not jobs:
        raise StarbenchError(f"no jobs found in {sweep_dir}")
    summary = summarize(jobs, metric, reference)
    summary.baseline = sweep_baseline(jobs, sweep_dir, fit=False)  # the one aggregate kept: no fit here
    check_regime(jobs, summary)
    md_path = sweep_dir / MD_FILE
    if not md_path.exists():
        raise StarbenchError(f"{md_path} does not exist: run `python scripts/aggregate.py {sweep_dir}` first")
    return SweepView(sweep_dir, sweep_group(sweep_dir), jobs, summary, verdict_of(md_path.read_text()),
                     _curve_keys(jobs, summary.metric))


# ----------------------------------------------------------------- the objects


def _groupby(view: SweepView) -> List[str]:
    return [f"config.{a}" for a in view.summary.axes] + ["config.op"]


def _runset(view: SweepView, entity: str, project: str, name: str, groupby: Sequence[str] = (),
            summary_run: bool = False):
    wr, _, expr = _libs()
    kind = (expr.Metric("JobType") == SUMMARY_RUN) if summary_run else (expr.Metric("Name") != SUMMARY_RUN)
    return wr.Runset(entity=entity, project=project, name=name,
                     filters=[expr.Metric("Group") == view.group, kind], groupby=list(groupby))


def _gap_what(s: Summary) -> str:
    return f"{s.ops[0]} − {s.reference}" if not s.multi else f"op − {s.reference}"


def _axes_text(view: SweepView) -> str:
    return " × ".join(view.summary.axes) or "all runs"


def star_vs_sum_panels(view: SweepView) -> list:
    """The metric per (axes, op) group: bars of the mean over seeds, the std as the spread."""
    wr, _, _ = _libs()
    m = view.summary.metric
    return [wr.BarPlot(title=f"{m}: {view.summary.comparison} by {_axes_text(view)} (mean ± std over seeds)",
                       metrics=[wr.SummaryMetric(m)], orientation="v", groupby_aggfunc="mean",
                       groupby_rangefunc="stddev", title_y=m, layout=wr.Layout(x=0, y=0, w=24, h=9))]


def curve_panels(view: SweepView, by: str = "op") -> list:
    """Per-epoch validation metric (and training losses), mean and std band of each group's runs."""
    wr, _, _ = _libs()
    panels = []
    for i, key in enumerate(view.curves):
        what = "validation" if i == 0 else "training"
        panels.append(wr.LinePlot(title=f"{what} {key} per epoch, by {by} (mean ± std)", x="Step", y=[key],
                                  title_x="epoch", title_y=key, groupby_aggfunc="mean", groupby_rangefunc="stddev",
                                  layout=wr.Layout(x=12 * (i % 2), y=8 * (i // 2), w=12, h=8)))
    return panels


def knob_panels(view: SweepView) -> list:
    """Parallel coordinates over the swept knobs (op, seed and the axes) and the metric; the run comparer
    with only the config keys that differ between runs."""
    wr, _, _ = _libs()
    columns = [wr.ParallelCoordinatesPlotColumn(metric=wr.Config(k)) for k in view.summary.varied]
    columns.append(wr.ParallelCoordinatesPlotColumn(metric=wr.SummaryMetric(view.summary.metric)))
    return [wr.ParallelCoordinatesPlot(title=f"swept knobs → {view.summary.metric}", columns=columns,
                                       layout=wr.Layout(x=0, y=0, w=24, h=9)),
            wr.RunComparer(diff_only=True, layout=wr.Layout(x=0, y=9, w=24, h=12))]


def summary_run_panels(view: SweepView) -> list:
    """What the summary run logged: the star-vs-sum table, the figure, the native gap chart."""
    wr, _, _ = _libs()
    s = view.summary
    panels = [wr.WeavePanelSummaryTable(table_name=SUMMARY_TABLE, layout=wr.Layout(x=0, y=0, w=24, h=8)),
              wr.MediaBrowser(title="star_vs_sum.png", media_keys=[FIGURE_KEY], layout=wr.Layout(x=0, y=8, w=12, h=10)),
              wr.CustomChart(query={"summaryTable": {"tableKey": table_key(GAP_CHART)}}, chart_name="wandb/bar/v0",
                             chart_fields={"label": "row", "value": "gap"},
                             chart_strings={"title": f"{_gap_what(s)} gap in {s.metric}"},
                             layout=wr.Layout(x=12, y=8, w=12, h=10))]
    axis = numeric_axis(s)
    if axis is not None:  # the gap and its CI as lines over the axis (logged only for one numeric axis)
        panels.append(wr.CustomChart(query={"summaryTable": {"tableKey": table_key(GAP_CI_CHART)}},
                                     chart_name="wandb/lineseries/v0",
                                     chart_fields={"step": "step", "lineKey": "lineKey", "lineVal": "lineVal"},
                                     chart_strings={"title": f"{_gap_what(s)} gap in {s.metric} over {axis}",
                                                    "xname": axis},
                                     layout=wr.Layout(x=0, y=18, w=24, h=9)))
    panels.append(wr.WeavePanelSummaryTable(table_name=JOBS_TABLE, layout=wr.Layout(x=0, y=27, w=24, h=8)))
    return panels


def build_report(view: SweepView, entity: str, project: str):
    wr, _, _ = _libs()
    s = view.summary
    counts: Dict[str, int] = {}
    for j in view.jobs:
        counts[j.status] = counts.get(j.status, 0) + 1
    intro = (f"Sweep `{view.sweep_dir}` · W&B group `{view.group}` · metric `{s.metric}` · swept: "
             f"{', '.join(s.varied) or 'nothing'} · jobs: {', '.join(f'{n} {k}' for k, n in sorted(counts.items()))}. "
             f"Rows: {', '.join(row_label(s, r) for r in s.rows)}.")
    caveat = s.caveat  # before anything else, as summary.md has it
    title = f"{caveat.flag + ': ' if caveat else ''}{s.title} [{view.group}]"
    if len(title) > TITLE_MAX:
        title = title[:TITLE_MAX - 1] + "…"
    jobs = lambda name, groupby=(): _runset(view, entity, project, name, groupby)  # noqa: E731
    blocks = [
        *([wr.MarkdownBlock(text=caveat.text)] if caveat else []),
        wr.MarkdownBlock(text=intro),
        wr.H2(text="Verdict (from summary.md)"),
        wr.MarkdownBlock(text=view.verdict),
        wr.H2(text=f"{s.comparison} over {_axes_text(view)}"),
        wr.PanelGrid(runsets=[jobs("jobs by axes and op", _groupby(view))], panels=star_vs_sum_panels(view)),
        wr.H2(text="Validation curves by op"),
        wr.PanelGrid(runsets=[jobs("jobs by op", ["config.op"])], panels=curve_panels(view)),
        wr.H2(text="Swept knobs and config differences"),
        wr.PanelGrid(runsets=[jobs("jobs")], panels=knob_panels(view)),
        wr.H2(text="Summary run (table, figure, gap chart)"),
        wr.PanelGrid(runsets=[_runset(view, entity, project, "summary run", summary_run=True)],
                     panels=summary_run_panels(view)),
    ]
    return wr.Report(entity=entity, project=project, title=title, width="fluid", blocks=blocks,
                     description=f"starbench: {s.comparison} for sweep group {view.group} ({s.metric})")


def build_workspace(view: SweepView, entity: str, project: str):
    """A saved view of the project's workspace: the group's job runs, grouped by ``[*axes, op]``."""
    wr, ws, expr = _libs()
    groupby = [expr.Config(a) for a in view.summary.axes] + [expr.Config("op")]
    sections = [ws.Section(name=view.summary.comparison, panels=star_vs_sum_panels(view), is_open=True),
                ws.Section(name="validation curves", panels=curve_panels(view, by=" × ".join([*view.summary.axes, "op"])),
                           is_open=True),
                ws.Section(name="swept knobs", panels=knob_panels(view), is_open=True)]
    return ws.Workspace(entity=entity, project=project, name=f"starbench {view.group}", sections=sections,
                        runset_settings=ws.RunsetSettings(
                            filters=[expr.Metric("Group") == view.group, expr.Metric("Name") != SUMMARY_RUN],
                            groupby=groupby))


# ----------------------------------------------------------------- a dry run's JSON


def _metric_text(obj: Any) -> Optional[str]:
    """wr.Config("width") -> "config.width", wr.SummaryMetric("top1") -> "summary.top1", expr.Metric(...)..."""
    names = {"Config": "config", "SummaryMetric": "summary", "Summary": "summary", "Metric": "run"}
    kind = type(obj).__name__
    if kind in names and type(obj).__module__.startswith("wandb_workspaces") and hasattr(obj, "name"):
        return f"{names[kind]}.{obj.name}"
    return None


def _default(f: dataclasses.Field) -> Any:
    """A field's default, also where pydantic keeps it in a ``Field(...)`` (FieldInfo) as the default."""
    default, factory = f.default, f.default_factory  # type: ignore[misc]
    if type(default).__name__ == "FieldInfo":
        default, factory = default.default, default.default_factory
        if type(default).__name__ == "PydanticUndefinedType":
            default = dataclasses.MISSING
    if default is not dataclasses.MISSING:
        return default
    if factory not in (None, dataclasses.MISSING):
        try:
            return factory()
        except Exception:  # e.g. Report.entity's factory asks the W&B API
            return dataclasses.MISSING
    return dataclasses.MISSING


# What a run set selects and groups by is always shown, even when empty.
ALWAYS = {"Runset": ("filters", "groupby"), "RunsetSettings": ("filters", "groupby")}


def describe(obj: Any) -> Any:
    """Plain JSON of wandb_workspaces objects from their public attributes (those not at their default),
    each object as {"type": its class, ...}. Never calls ``_to_model`` (that asks the W&B API)."""
    metric = _metric_text(obj)
    if metric is not None:
        return metric
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        kind = type(obj).__name__
        out: Dict[str, Any] = {"type": kind}
        for f in dataclasses.fields(obj):
            if f.name.startswith("_") or not f.init:
                continue
            value = describe(getattr(obj, f.name))
            default = _default(f)
            if (f.name not in ALWAYS.get(kind, ()) and default is not dataclasses.MISSING
                    and value == describe(default)):
                continue
            out[f.name] = value
        return out
    if isinstance(obj, dict):
        return {str(k): describe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [describe(v) for v in obj]
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return repr(obj)


def panel_types(described: Any) -> List[str]:
    """Every panel type in a described report or workspace, in order (for checks)."""
    found: List[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("panels",):
                for p in node.get(key) or []:
                    found.append(p["type"])
            for k, v in node.items():
                if k != "panels":
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(described)
    return found
