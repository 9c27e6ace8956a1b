"""Apply a tuning sweep's selection rule (docs/protocol.md, amendment 6) and write the test-set preset that runs each
op at its own best trial:

    python scripts/tune_select.py outputs/sweeps/tune_width/<date> [--name tuned_width] [--seeds 6] [--conf conf]

For each (op, cell) of the sweep (``experiments.analysis.tuning``), the trial with the highest validation score
(ties: the smaller tuned values) becomes ``conf/tuned/<cell>_<op>.yaml`` (op, cell and tuned knobs); the preset
``conf/experiment/<name>.yaml`` sweeps seeds 0..n-1 and those options (seed outermost, then cell, then op, so each
pair runs side by side), on the protocol's test-set data. Commit both before launching
``python run.py experiment=<name>``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from experiments.analysis import load_jobs
from experiments.analysis.summary import default_metric
from experiments.analysis.tuning import summarize_tuning
from experiments.errors import StarbenchError
from experiments.records import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]


def option_name(axes, key, op) -> str:
    """``w8_star`` for width 8, ``depth12_w8_star`` for two axes: short, sortable, a valid config name."""
    parts = [f"w{v}" if a == "width" else f"{a.split('.')[-1]}{v}" for a, v in zip(axes, key)]
    return "_".join([*parts, str(op)])


def _yaml_value(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def write_selection(sweep_dir: Path, conf: Path, name: str, seeds: int, metric=None):
    jobs = load_jobs(sweep_dir)
    metric = metric or default_metric(jobs)
    tuning = summarize_tuning(jobs, metric)
    if tuning is None:
        raise StarbenchError(f"{sweep_dir} is not a tuning sweep (no tuned knob takes several values per op)")
    options = []
    (conf / "tuned").mkdir(parents=True, exist_ok=True)
    for cell in tuning.cells:
        # the model's shape as the cell's jobs had it, swept or not (the test-set preset starts from the protocol's)
        shape = {k: v for j in jobs if tuple(j.get(a) for a in tuning.axes) == cell.key
                 for k, v in ((k, j.get(k)) for k in ("width", "depth")) if v is not None}
        for op in tuning.ops:
            if op not in cell.by_op:
                continue
            trial, score = cell.by_op[op].best()
            option = option_name(tuning.axes, cell.key, op)
            lines = ["# @package _global_",
                     f"# {op} at its best trial of {cell.by_op[op].n} in {sweep_dir.name} "
                     f"({tuning.metric_label.lower()} {score:.2f}%), by the selection rule of docs/protocol.md "
                     "amendment 6; written by scripts/tune_select.py.",
                     f"op: {op}"]
            top = {**shape, **{a: v for a, v in zip(tuning.axes, cell.key) if "." not in a}}
            lines += [f"{a}: {_yaml_value(v)}" for a, v in top.items()]
            nested = {}
            for knob, value in [*((a, v) for a, v in zip(tuning.axes, cell.key) if "." in a),
                                *zip(tuning.tuned, trial)]:
                group, leaf = knob.split(".", 1)
                nested.setdefault(group, []).append(f"  {leaf}: {_yaml_value(value)}")
            for group, leaves in nested.items():
                lines += [f"{group}:", *leaves]
            atomic_write_text(conf / "tuned" / f"{option}.yaml", "\n".join(lines) + "\n")
            options.append((option, op, trial, score))
    preset = [
        "# @package _global_",
        f"# Each op at its own best trial of {sweep_dir.name} (docs/protocol.md, amendment 6), on the protocol's test-set",
        "# data; written by scripts/tune_select.py. Seed outermost, then the cell, then the op: each pair side by side.",
        f"#   python run.py experiment={name}      ({len(options) * seeds} jobs)",
        "defaults:", "  - /protocol: demonet", "  - _self_", "",
        "hydra:", "  sweep:", f"    dir: ${{paths.sweeps}}/{name}/${{now:%Y-%m-%d_%H-%M-%S}}",
        "  sweeper:", "    params:",
        f"      seed: {','.join(map(str, range(seeds)))}",
        f"      +tuned: {','.join(o for o, *_ in options)}"]
    atomic_write_text(conf / "experiment" / f"{name}.yaml", "\n".join(preset) + "\n")
    return tuning, options


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("sweep_dir", type=Path, help="a finished tuning sweep (experiment=tune_width)")
    p.add_argument("--name", default="tuned_width", help="the preset to write (conf/experiment/<name>.yaml)")
    p.add_argument("--seeds", type=int, default=6, help="seeds per op and cell (the protocol's 6)")
    p.add_argument("--conf", type=Path, default=ROOT / "conf", help="the config dir to write into")
    p.add_argument("--metric", default=None, help="record field the rule maximises (default: top1)")
    a = p.parse_args(argv)
    if not a.sweep_dir.is_dir():
        p.error(f"{a.sweep_dir} is not a directory")
    if a.seeds < 2:
        p.error("--seeds must be at least 2")
    try:
        tuning, options = write_selection(a.sweep_dir, a.conf, a.name, a.seeds, a.metric)
    except StarbenchError as e:
        print(f"tune_select: error: {e}", file=sys.stderr)
        return 1
    for option, op, trial, score in options:
        settings = ", ".join(f"{k}={_yaml_value(v)}" for k, v in zip(tuning.tuned, trial))
        print(f"{option}: {settings} ({score:.2f})")
    print(f"wrote {a.conf / 'experiment' / (a.name + '.yaml')} and {len(options)} options in {a.conf / 'tuned'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
