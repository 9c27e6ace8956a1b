"""The docs' generated tables and the check of the prose (``experiments.analysis.verdict``): blocks are rewritten from
the records, an interval a page quotes must be a statistic of them, and the verdict takes a new row by appending a
``Claim`` (Holm's correction then runs over every row)."""
import json

import pytest

from experiments.analysis import verdict
from experiments.analysis.verdict import (Claim, Measured, Results, Source, matches, render, stale_quotes, typeset,
                                          verdict_table)
from experiments.errors import StarbenchError


def test_render_rewrites_each_block_and_refuses_unknown_or_unclosed():
    blocks = {"a": lambda r: ["| new |"]}
    text = "intro\n<!-- generated: a (python scripts/docs_tables.py) -->\n| old |\n<!-- end generated: a -->\nend"
    assert render(text, None, blocks) == ("intro\n<!-- generated: a (python scripts/docs_tables.py) -->\n| new |\n"
                                          "<!-- end generated: a -->\nend")
    with pytest.raises(StarbenchError, match="unknown generated block 'b'"):
        render("<!-- generated: b -->\n<!-- end generated: b -->", None, blocks)
    with pytest.raises(StarbenchError, match="no '<!-- end generated: a -->' line"):
        render("<!-- generated: a -->\n| old |", None, blocks)


def test_quoted_intervals_match_at_their_precision_with_or_without_sign():
    known = [(-0.5512, -0.8523, -0.2498), (0.0712, -0.0512, 0.1934)]
    assert matches("+0.07 [−0.05, +0.19]", known)
    assert matches("0.55 points [0.25, 0.85]", known)           # "sum loses 0.55": the sign dropped
    assert not matches("+0.01 [−0.82, +0.84]", known)
    assert stale_quotes("a +0.07 [−0.05, +0.19] and\nb +0.08 [−0.05, +0.19]", known) == [(2, "+0.08 [−0.05, +0.19]")]


def test_typeset_puts_minus_signs_on_numbers_only():
    assert typeset("-0.15 [-0.50, +0.14] on 2026-12-07, fig1_width-2") == "−0.15 [−0.50, +0.14] on 2026-12-07, fig1_width-2"


def test_a_claim_appended_is_a_row_and_holm_runs_over_every_row():
    def fixed(p, here):
        return lambda results: Measured(here, "yes", "yes" if p < 0.05 else "no", "±0.1", p, "yes")
    claims = [Claim("A", "+1", fixed(0.01, "a")), Claim("B", "+2", fixed(0.03, "b"))]
    table = verdict_table(None, claims)
    assert "Holm over the 2 rows" in table[0] and len(table) == 4
    assert "| A | +1 | a | yes | yes | yes (0.01 → 0.02) |" in table[2]
    assert "| B | +2 | b | yes | yes | yes (0.03 → 0.03) |" in table[3]
    table = verdict_table(None, [*claims, Claim("C", "+3", fixed(0.2, "c"))])   # a new task's row
    assert "Holm over the 3 rows" in table[0]
    assert "**no** (0.03 → 0.06)" in table[3]      # significant alone, not in the larger family: bold


def write(root, op, seed, width, top1, cpu="AMD EPYC"):
    job = root / f"op={op},seed={seed},width={width}"
    job.mkdir(parents=True)
    (job / "metrics.json").write_text(json.dumps({
        "status": "completed", "task": "classify", "model": "demonet", "op": op, "seed": seed, "width": width,
        "depth": 12, "data": "fashion_mnist", "epochs": 4, "top1": top1, "provenance": {"cpu": cpu}}))


def test_a_preset_table_comes_from_its_records(tmp_path, monkeypatch):
    for seed in range(3):
        for width in (8, 16):
            write(tmp_path / "toy" / "runs", "sum", seed, width, 80.0 + seed)
            write(tmp_path / "toy" / "runs", "star", seed, width, 80.5 + seed + 0.1 * width / 8 * (seed == 1))
    monkeypatch.setitem(verdict.SOURCES, "toy", Source(("toy/runs",)))
    monkeypatch.setitem(verdict.BLOCKS, "table:toy", lambda r: verdict.preset_table(r, "toy"))
    page = "<!-- generated: table:toy -->\n<!-- end generated: table:toy -->\n"
    out = render(page, Results(tmp_path))
    assert "| 8 | 81.00 ± 1.00 | 81.53 ± 1.00 | +0.53 [+0.39, +0.68] | 3 | yes |" in out
    assert "| 16 | 81.00 ± 1.00 | 81.57 ± 1.01 | +0.57 [+0.28, +0.85] | 3 | yes |" in out
    assert verdict.machines_text(Results(tmp_path), "toy") == "yes"
