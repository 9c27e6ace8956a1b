"""The star-vs-sum figure: its layout choices, and that it draws every kind of sweep."""
import matplotlib.image

from experiments.analysis.figures import layout
from experiments.analysis.tables import Row, Summary


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
    """A flagged sweep's figure says so first: the flag opens its title (sweep.write_outputs passes the caveat's)."""
    import matplotlib.figure
    from experiments.analysis.figures import plot
    titles = []
    original = matplotlib.figure.Figure.suptitle

    def suptitle(self, text, **kwargs):
        titles.append(text)
        return original(self, text, **kwargs)
    monkeypatch.setattr(matplotlib.figure.Figure, "suptitle", suptitle)
    plot(summary_of(["width"], [(8,), (16,)]), tmp_path / "plain.png")
    plot(summary_of(["width"], [(8,), (16,)]), tmp_path / "flagged.png", flag="NOT EVIDENCE: under-trained")
    assert titles == ["a title", "NOT EVIDENCE: under-trained: a title"]


def test_an_under_trained_sweeps_figure_is_flagged(tmp_path, monkeypatch):
    from experiments.analysis import sweep as sweep_module
    from tests.experiments.analysis.fake_sweeps import make_sweep
    flags = []
    monkeypatch.setattr(sweep_module, "plot", lambda summary, path, flag=None: flags.append(flag))
    make_sweep(tmp_path / "s", baseline=90.0)
    assert flags == ["NOT EVIDENCE: under-trained"]
