"""The star-vs-sum figure: its layout choices, and that it draws every kind of sweep."""
import matplotlib.image

from experiments.analysis.figures import layout
from experiments.analysis.summary import Row, Summary


def summary_of(axes, keys, base_op="sum", test_op="star", n=3):
    rows = [Row(k, {base_op: {s: 80.0 + s + i for s in range(n)}, test_op: {s: 80.5 + s + i for s in range(n)}})
            for i, k in enumerate(keys)]
    return Summary("top1", ["op", "seed", *axes], list(axes), rows, "a title", "Top-1 accuracy", 81.0)


def test_layout_numeric_categorical_and_budget_curve():
    assert layout(summary_of(["width"], [(8,), (16,), (32,)])) == (0, None)          # to scale
    assert layout(summary_of(["model.act"], [("gelu",), ("none",)])) == (None, None)  # categories
    budget = summary_of(["width", "trainer.epochs"], [(8, 1), (8, 16), (32, 1), (32, 16)])
    assert layout(budget) == (1, 0)   # epochs on x, one series per width
    mixed = summary_of(["model.act", "width"], [("gelu", 8), ("none", 8)])
    assert layout(mixed) == (1, 0)


def test_plot_draws_each_layout(tmp_path):
    from experiments.analysis.figures import plot
    cases = {"width": summary_of(["width"], [(8,), (16,), (32,)]),
             "act": summary_of(["model.act"], [("gelu",), ("none",)], n=1),   # one run: hollow, no bar
             "budget": summary_of(["width", "trainer.epochs"], [(8, 1), (8, 16), (32, 1), (32, 16)]),
             "none": summary_of([], [()])}
    for name, summary in cases.items():
        plot(summary, tmp_path / f"{name}.png")
        image = matplotlib.image.imread(tmp_path / f"{name}.png")
        assert image.shape[0] > 300 and image.shape[1] > 1000, name


def test_a_flag_heads_the_figure(tmp_path, monkeypatch):
    """A flagged sweep's figure says so first: its caveat's flag opens the title."""
    import matplotlib.figure
    from experiments.analysis.figures import plot
    from experiments.analysis.summary import Caveat
    titles = []
    original = matplotlib.figure.Figure.suptitle

    def suptitle(self, text, **kwargs):
        titles.append(text)
        return original(self, text, **kwargs)
    monkeypatch.setattr(matplotlib.figure.Figure, "suptitle", suptitle)
    plot(summary_of(["width"], [(8,), (16,)]), tmp_path / "plain.png")
    monkeypatch.setattr(Summary, "caveat", property(lambda s: Caveat("NOT EVIDENCE: under-trained", "")))
    plot(summary_of(["width"], [(8,), (16,)]), tmp_path / "flagged.png")
    assert titles == ["a title", "NOT EVIDENCE: under-trained: a title"]


def test_an_under_trained_sweeps_figure_is_flagged(tmp_path, monkeypatch):
    from experiments.analysis import sweep as sweep_module
    from tests.experiments.analysis.fake_sweeps import make_sweep
    flags = []
    monkeypatch.setattr(sweep_module, "plot", lambda summary, path, machines=None: flags.append(
        summary.caveat.flag if summary.caveat else None))
    make_sweep(tmp_path / "s", baseline=90.0)
    assert flags == ["NOT EVIDENCE: under-trained"]


def capture(monkeypatch):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    captured = {}
    monkeypatch.setattr(plt, "close", lambda fig: captured.setdefault("fig", fig))
    return captured


def footnote(fig):
    return " ".join(t.get_text() for t in fig.texts).replace("\n", " ")


def test_width_sweep_draws_the_trend_per_doubling_on_a_log2_axis(monkeypatch, tmp_path):
    from experiments.analysis.figures import plot
    from experiments.analysis.levels import trend_of
    captured = capture(monkeypatch)
    summary = summary_of(["width"], [(8,), (16,), (32,), (48,)], n=4)
    for i, row in enumerate(summary.rows):  # gaps that shrink with width, a little differently per seed
        row.by_op["star"] = {s: row.by_op["sum"][s] + 1.0 - 0.3 * i + 0.05 * s * i for s in range(4)}
    plot(summary, tmp_path / "f.png")
    fig = captured["fig"]
    acc, gap = fig.axes[0], fig.axes[-1]
    assert acc.get_xscale() == "log" and gap.get_xscale() == "log"   # widths 8-48 span 6x: log2 for the trend
    g = trend_of(summary, "star")
    labels = [t.get_text() for t in gap.get_legend().get_texts()]
    assert f"trend star − sum: {g.mean:+.2f} [{g.lo:+.2f}, {g.hi:+.2f}] per doubling of width (4 seeds)" in labels
    assert "star − sum (n = 4 pairs)" in labels and "Hollow" not in footnote(fig)


def test_baseline_far_below_gets_a_strip_and_the_reference_op_is_on_top(monkeypatch, tmp_path):
    from experiments.analysis.figures import plot
    captured = capture(monkeypatch)
    summary = summary_of(["model.act"], [("gelu",), ("none",)])
    summary.baseline = 40.0                       # runs at 80-83: the axis is not spent on the gap down to 40
    plot(summary, tmp_path / "f.png")
    fig = captured["fig"]
    acc, strip = fig.axes[0], fig.axes[1]
    assert acc.get_ylim()[0] > 75 and strip.get_ylim()[0] < 40 < strip.get_ylim()[1]
    assert "axis is broken" in footnote(fig)
    z = {c.get_label(): c.lines[0].get_zorder() for c in acc.containers if c.get_label() and not c.get_label().startswith("_")}
    assert z["sum (n = 3)"] > z["star (n = 3)"]   # the reference is drawn last, never hidden under the other op


def test_two_seed_intervals_are_cut_to_the_runs_range(monkeypatch, tmp_path):
    from experiments.analysis.figures import plot
    captured = capture(monkeypatch)
    summary = summary_of(["width"], [(8,), (16,)], n=2)
    summary.rows[0].by_op["star"] = {0: 70.0, 1: 90.0}   # t(0.975, 1) = 12.7: an interval of ±127 points
    plot(summary, tmp_path / "f.png")
    fig = captured["fig"]
    low, high = fig.axes[0].get_ylim()
    assert low >= 0 and high <= 100 and high - low < 40
    assert "cut at the edge" in footnote(fig)


def test_hollow_is_explained_only_when_drawn(monkeypatch, tmp_path):
    from experiments.analysis.figures import plot
    captured = capture(monkeypatch)
    plot(summary_of(["model.act"], [("gelu",), ("none",)], n=1), tmp_path / "f.png")
    assert "Hollow: one run" in footnote(captured["fig"])


def test_pairs_on_two_cpu_models_are_marked(monkeypatch, tmp_path):
    from experiments.analysis.figures import CROSS_MARK, plot
    from experiments.analysis.machines import MachineReport, PairCount
    captured = capture(monkeypatch)
    summary = summary_of(["width"], [(8,), (16,), (32,)])
    report = MachineReport(summary)
    for row in summary.rows:
        report.cells[(row.key, "sum")] = {"AMD EPYC": 3}
        report.cells[(row.key, "star")] = {"AMD EPYC": 1, "Intel Xeon": 2} if row.key == (32,) else {"AMD EPYC": 3}
        report.pairs[(row.key, "star")] = PairCount(3, 2 if row.key == (32,) else 0)
    plot(summary, tmp_path / "f.png", report)
    fig = captured["fig"]
    assert [t.get_text() for t in fig.axes[-1].texts] == [CROSS_MARK]
    assert "2 of 9 pairs (width 32: 2 of 3) ran on two CPU models" in footnote(fig)
