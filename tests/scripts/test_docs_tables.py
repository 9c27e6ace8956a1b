"""scripts/docs_tables.py on the committed pages: every generated table is what the committed records give, and every
interval the pages quote is a statistic of them; a page with a stale table or a number no record gives fails (one run:
the statistics of every preset take a minute)."""
import subprocess
import sys

from tests.conftest import ROOT

SCRIPT = ROOT / "scripts" / "docs_tables.py"


def test_the_committed_pages_agree_with_the_records_and_a_stale_page_fails(tmp_path):
    from experiments.analysis.verdict import default_pages
    pages = default_pages(ROOT)
    assert ROOT / "docs" / "reproduction.md" in pages and ROOT / "docs" / "results" / "op_zoo" / "README.md" in pages
    text = (ROOT / "docs" / "reproduction.md").read_text()
    start = text.index("<!-- generated: table:starnet_op")
    end = text.index("<!-- end generated: table:starnet_op -->")
    stale = tmp_path / "page.md"
    stale.write_text(text[start:end].replace("91.62", "91.66") + "<!-- end generated: table:starnet_op -->\n\n"
                     "The width trend was +0.01 [−0.82, +0.84] on widths 8–16 and +0.02 [−0.81, +0.85] on nothing.\n")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--check", *map(str, pages), str(stale)], capture_output=True,
                          text=True, timeout=900, cwd=ROOT)
    problems = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and all(line.startswith(str(stale)) for line in problems), proc.stderr[-4000:]
    assert any("generated blocks are stale (table:starnet_op)" in line for line in problems)
    assert any("'+0.02 [−0.81, +0.85]' is no statistic of the records" in line for line in problems)
    assert "+0.01 [−0.82, +0.84]" not in proc.stderr      # amendment 4's trial number: widths 8–16's statistic
