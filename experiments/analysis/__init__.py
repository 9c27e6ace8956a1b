"""Analysis of finished runs: a sweep dir -> ``summary.csv``, ``summary.md``, ``star_vs_sum.png`` (and a W&B
summary run). ``jobs`` reads the jobs; ``summary`` groups them into rows and pairs each op with the reference op
(default sum) by seed, with ``stats`` and ``pooled`` for the intervals and tests; ``regime`` (the trained-regime
check) and ``levels`` (the gap along the sweep's axis) are the analyses summary.md adds; ``tables`` and ``figures``
write the outputs, spelled by ``format``; ``machines`` says which CPU model ran each job, ``wandb_runs`` talks to W&B,
``sweep`` ties them together (``aggregate``; ``aggregate_dirs`` for committed results). ``tuning``: an equal tuning
budget per op. ``pilot``: the protocol's pilot rules. ``rank`` and ``probe``: the implicit-dimension probe of trained
DemoNets. ``verdict``: the docs' tables from the records."""
from .jobs import Job, flatten, knobs_of, load_jobs
from .stats import LEVEL, Gap, mean_std, paired_gap
from .summary import BASE_OP, TEST_OP, Row, Summary, compared_ops, summarize
from .sweep import CSV_FILE, FIG_FILE, MD_FILE, SweepReport, aggregate, aggregate_dirs, write_outputs

__all__ = ["BASE_OP", "CSV_FILE", "FIG_FILE", "Gap", "Job", "LEVEL", "MD_FILE", "Row", "Summary", "SweepReport",
           "TEST_OP", "aggregate", "aggregate_dirs", "compared_ops", "flatten", "knobs_of", "load_jobs", "mean_std",
           "paired_gap", "summarize", "write_outputs"]
