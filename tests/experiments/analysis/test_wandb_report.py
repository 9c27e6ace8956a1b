"""The sweep's W&B Report and workspace view (``experiments.analysis.wandb_report``), built with the real
``wandb_workspaces`` objects from hand-written sweep dirs (classification and detection), offline: W&B's API
is made to fail, so building and describing them must never reach it."""
import json

import pytest

wr = pytest.importorskip("wandb_workspaces.reports.v2", reason="wandb-workspaces not installed (the [report] "
                         "extra: pip install -e '.[report]')")
ws = pytest.importorskip("wandb_workspaces.workspaces", reason="wandb-workspaces not installed")
from wandb_workspaces import expr  # noqa: E402

from experiments.analysis import wandb_report as wrep  # noqa: E402
from experiments.errors import StarbenchError  # noqa: E402
from experiments.records import sweep_group  # noqa: E402
from tests.experiments.analysis.fake_sweeps import TASKS, make_sweep  # noqa: E402

@pytest.fixture(autouse=True)
def no_wandb_api(monkeypatch):
    import wandb

    def refuse(*args, **kwargs):
        raise AssertionError("the W&B API was called")
    monkeypatch.setattr(wandb, "Api", refuse)


def blocks_of(report, kind):
    return [b for b in report.blocks if isinstance(b, kind)]


@pytest.mark.parametrize("task", sorted(TASKS))
def test_report_holds_every_panel_for_the_sweeps_group(tmp_path, task):
    metric, axis, values, loss = TASKS[task]
    sweep = make_sweep(tmp_path / "sweeps" / task, task)
    view = wrep.load_view(sweep)
    assert view.summary.metric == metric and view.summary.axes == [axis]
    assert view.group == sweep_group(sweep) == f"sweeps_{task}"
    report = wrep.build_report(view, "me", "starbench")
    assert isinstance(report, wr.Report) and (report.entity, report.project) == ("me", "starbench")

    # The verdict block is summary.md's table, as aggregate wrote it.
    md = (sweep / "summary.md").read_text()
    texts = [b.text for b in blocks_of(report, wr.MarkdownBlock)]
    row = next(line for line in md.splitlines() if line.startswith(f"| {values[0]} |"))
    (verdict,) = [t for t in texts if row in t]
    pooled = next((line for line in md.splitlines() if line.startswith("## Pooled")), None)
    assert pooled is None or pooled[3:] in verdict

    grids = blocks_of(report, wr.PanelGrid)
    assert len(grids) == 4
    by_axis, curves, knobs, summary_run = grids
    for grid in (by_axis, curves, knobs):
        (runset,) = grid.runsets
        assert (runset.entity, runset.project) == ("me", "starbench")
        assert runset.filters == f"Metric(\"Group\") == '{view.group}' and Metric(\"Name\") != 'summary'"
    # star vs sum over the axis: runs grouped by (axis, op), mean with the std over seeds as the spread
    assert by_axis.runsets[0].groupby == [f"config.{axis}", "config.op"]
    # a nested config path (model.variant) maps onto W&B's nested config storage
    assert expr.groupby_str_to_key(f"config.{axis}").name == (
        "model.value.variant" if axis == "model.variant" else f"{axis}.value")
    (bar,) = by_axis.panels
    assert isinstance(bar, wr.BarPlot) and [m.name for m in bar.metrics] == [metric]
    assert isinstance(bar.metrics[0], wr.SummaryMetric)
    assert (bar.groupby_aggfunc, bar.groupby_rangefunc) == ("mean", "stddev")
    # per-epoch curves grouped by op: the validation metric first, then the training loss
    assert curves.runsets[0].groupby == ["config.op"]
    assert all(isinstance(p, wr.LinePlot) for p in curves.panels)
    assert [p.y for p in curves.panels] == [[metric], [loss]]
    assert all(p.groupby_rangefunc == "stddev" for p in curves.panels)
    # parallel coordinates over the swept knobs and the metric; the comparer shows only differing keys
    pc, comparer = knobs.panels
    assert isinstance(pc, wr.ParallelCoordinatesPlot)
    assert [type(c.metric).__name__ for c in pc.columns] == ["Config"] * 3 + ["SummaryMetric"]
    assert [c.metric.name for c in pc.columns] == ["op", "seed", axis, metric]
    assert isinstance(comparer, wr.RunComparer) and comparer.diff_only is True
    assert knobs.runsets[0].groupby == []
    # the summary run: its table, figure, native gap chart and jobs table
    assert summary_run.runsets[0].filters == (f"Metric(\"Group\") == '{view.group}' and "
                                              "Metric(\"JobType\") == 'summary'")
    tables = [p.table_name for p in summary_run.panels if isinstance(p, wr.WeavePanelSummaryTable)]
    assert tables == ["summary/star_vs_sum", "summary/jobs"]
    (media,) = [p for p in summary_run.panels if isinstance(p, wr.MediaBrowser)]
    assert media.media_keys == ["summary/figure"]
    charts = [p for p in summary_run.panels if isinstance(p, wr.CustomChart)]
    assert charts[0].chart_name == "wandb/bar/v0"
    assert charts[0].query == {"summaryTable": {"tableKey": "summary/gap_chart_table"}}
    # the CI line chart only where the one axis is numeric
    assert [c.chart_name for c in charts[1:]] == (["wandb/lineseries/v0"] if task == "classify" else [])


@pytest.mark.parametrize("task", sorted(TASKS))
def test_dry_run_describes_the_objects_as_json(tmp_path, task):
    metric, axis, _, _ = TASKS[task]
    view = wrep.load_view(make_sweep(tmp_path / "s" / task, task))
    described = wrep.describe(wrep.build_report(view, "me", "proj"))
    assert json.loads(json.dumps(described)) == described
    assert described["type"] == "Report" and described["entity"] == "me"
    kinds = [b["type"] for b in described["blocks"]]
    assert kinds.count("PanelGrid") == 4 and kinds[:3] == ["MarkdownBlock", "H2", "MarkdownBlock"]
    expected = ["BarPlot", "LinePlot", "LinePlot", "ParallelCoordinatesPlot", "RunComparer",
                "WeavePanelSummaryTable", "MediaBrowser", "CustomChart"]
    expected += ["CustomChart"] if task == "classify" else []
    assert wrep.panel_types(described) == [*expected, "WeavePanelSummaryTable"]
    grids = [b for b in described["blocks"] if b["type"] == "PanelGrid"]
    assert grids[0]["runsets"][0]["groupby"] == [f"config.{axis}", "config.op"]
    assert grids[0]["panels"][0]["metrics"] == [f"summary.{metric}"]
    assert grids[2]["runsets"][0]["groupby"] == []  # shown even when empty
    assert "Group" in grids[0]["runsets"][0]["filters"]
    assert grids[2]["panels"][0]["columns"][-1] == {"type": "ParallelCoordinatesPlotColumn",
                                                     "metric": f"summary.{metric}"}


def test_the_librarys_own_serialisation_needs_the_api(tmp_path):
    """Why describe() exists: Runset._to_model asks W&B for the project's id (here: the refusing stub)."""
    view = wrep.load_view(make_sweep(tmp_path / "s", "classify"))
    runset = wrep.build_report(view, "me", "proj").blocks[4].runsets[0]
    with pytest.raises(AssertionError, match="W&B API was called"):
        runset._to_model()


def test_workspace_view_of_the_group(tmp_path):
    view = wrep.load_view(make_sweep(tmp_path / "sweeps" / "w", "classify"))
    workspace = wrep.build_workspace(view, "me", "proj")
    assert isinstance(workspace, ws.Workspace) and workspace.name == "starbench sweeps_w"
    assert [s.name for s in workspace.sections] == ["star vs sum", "validation curves", "swept knobs"]
    rs = workspace.runset_settings
    assert rs.filters == "Metric(\"Group\") == 'sweeps_w' and Metric(\"Name\") != 'summary'"
    assert [g.name for g in rs.groupby] == ["width", "op"]
    described = wrep.describe(workspace)
    assert described["runset_settings"]["groupby"] == ["config.width", "config.op"]
    assert wrep.panel_types(described) == ["BarPlot", "LinePlot", "LinePlot", "ParallelCoordinatesPlot",
                                           "RunComparer"]


def test_verdict_is_the_verdict_then_the_pooled_test_then_the_table():
    md = "# T\n\nSource: x\n\n## By width\n\n| table |\n\n## Pooled over all 6 pairs (2 rows)\n\npooled text\n"
    assert wrep.verdict_of(md) == ("# T\n\nSource: x\n\n### Pooled over all 6 pairs (2 rows)\n\npooled text\n\n"
                                   "### By width\n\n| table |")
    md += "\n## Verdict\n\nstar wins\n\n## Jobs not completed\n\n| x |\n"
    verdict = wrep.verdict_of(md)
    assert verdict.startswith("# T\n\nSource: x\n\n### Verdict\n\nstar wins\n\n### Pooled")
    assert "Jobs not completed" not in verdict
    assert wrep.verdict_of("# T\n\n## By width\n\n| t |\n") == "# T\n\n### By width\n\n| t |"
    assert wrep.verdict_of("just text\n") == "just text"


def test_bad_input(tmp_path):
    with pytest.raises(StarbenchError, match="ENTITY/PROJECT"):
        wrep.parse_project("starbench")
    assert wrep.parse_project("me/starbench") == ("me", "starbench")
    with pytest.raises(StarbenchError, match="does not exist"):
        wrep.load_view(tmp_path / "nope")
    sweep = make_sweep(tmp_path / "s", "classify", seeds=(0,))
    (sweep / "summary.md").unlink()
    with pytest.raises(StarbenchError, match="scripts/aggregate.py"):
        wrep.load_view(sweep)


def test_report_of_an_under_trained_sweep_says_so_first(tmp_path):
    sweep = make_sweep(tmp_path / "sweeps" / "w", "classify", baseline=90.0)
    report = wrep.build_report(wrep.load_view(sweep), "me", "starbench")
    assert report.title.startswith("NOT EVIDENCE: under-trained: Star vs sum")
    first = report.blocks[0]
    assert isinstance(first, wr.MarkdownBlock) and first.text.startswith("**Not evidence about the ops: under-trained.**")
    verdict = next(b.text for b in blocks_of(report, wr.MarkdownBlock) if b.text.startswith("# "))
    assert "under-trained" in verdict.split("###")[0] and "### Trained-regime check" in verdict


def test_report_of_a_sweep_without_caveat_opens_with_its_intro(tmp_path):
    sweep = make_sweep(tmp_path / "sweeps" / "w", "classify")
    report = wrep.build_report(wrep.load_view(sweep), "me", "starbench")
    assert report.blocks[0].text.startswith("Sweep `") and report.title.startswith("Star vs sum")
