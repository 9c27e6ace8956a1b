"""A tuning sweep's selection rule (docs/protocol.md, amendment 6) turned into the test-set preset that runs each op at
its own best trial (``scripts/tune_select.py``).

For each (op, cell) of the sweep (``tuning``), the trial with the highest validation score (ties: the smaller tuned
values) becomes ``conf/tuned/<cell>_<op>.yaml`` (op, cell and tuned knobs); the preset ``conf/experiment/<name>.yaml``
sweeps seeds 0..n-1 and those options (seed outermost, then cell, then op, so each pair runs side by side), on the
protocol's test-set data.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

from ..errors import StarbenchError
from ..records import atomic_write_text
from .jobs import Job, load_jobs
from .summary import default_metric
from .tuning import Tuning, summarize_tuning


def option_name(axes: Sequence[str], key: Tuple[Any, ...], op: Any) -> str:
    """``w8_star`` for width 8, ``depth12_w8_star`` for two axes: short, sortable, a valid config name."""
    parts = [f"w{v}" if a == "width" else f"{a.split('.')[-1]}{v}" for a, v in zip(axes, key)]
    return "_".join([*parts, str(op)])


def yaml_value(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def check_complete(jobs: Sequence[Job], tuning: Tuning) -> None:
    """The selection rule picks from the whole grid: refuse a sweep with a job not completed, or an (op, cell) short
    of a trial another has (a sweep still running, or stopped), before anything is written."""
    unfinished = [j for j in jobs if j.status != "completed"]
    if unfinished:
        raise StarbenchError(f"{len(unfinished)} of {len(jobs)} jobs are not completed (e.g. {unfinished[0].name}: "
                             f"{unfinished[0].status}); finish the sweep before selecting")
    grid = {t for cell in tuning.cells for trials in cell.by_op.values() for t in trials.scores}
    tried = {(cell.key, op): set(cell.by_op[op].scores) if op in cell.by_op else set()
             for cell in tuning.cells for op in tuning.ops}
    short = [(key, op, len(grid - trials)) for (key, op), trials in tried.items() if trials != grid]
    if short:
        key, op, missing = short[0]
        raise StarbenchError(f"the sweep is incomplete: {len(short)} (op, cell) lack trials of the {len(grid)}-trial "
                             f"grid (e.g. {op} at {', '.join(f'{a}={v}' for a, v in zip(tuning.axes, key))}: "
                             f"{missing} missing); finish the sweep before selecting")


def write_selection(sweep_dir: Path, conf: Path, name: str, seeds: int,
                    metric: Optional[str] = None) -> Tuple[Tuning, List[Tuple[str, Any, Tuple[Any, ...], float]]]:
    """Each op's best trial per cell as ``conf/tuned/<option>.yaml``, and the preset ``conf/experiment/<name>.yaml``
    that runs them: (the tuning analysis, [(option, op, trial, score)])."""
    jobs = load_jobs(sweep_dir)
    metric = metric or default_metric(jobs)
    tuning = summarize_tuning(jobs, metric)
    if tuning is None:
        raise StarbenchError(f"{sweep_dir} is not a tuning sweep (no tuned knob takes several values per op)")
    check_complete(jobs, tuning)
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
            lines += [f"{a}: {yaml_value(v)}" for a, v in top.items()]
            nested = {}
            for knob, value in [*((a, v) for a, v in zip(tuning.axes, cell.key) if "." in a),
                                *zip(tuning.tuned, trial)]:
                group, leaf = knob.split(".", 1)
                nested.setdefault(group, []).append(f"  {leaf}: {yaml_value(value)}")
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


def select_tuned(sweep_dir: Path, conf: Path, name: str, seeds: int, metric: Optional[str] = None) -> List[str]:
    """``write_selection``, and the lines that say what it wrote: each option's settings, then the files."""
    tuning, options = write_selection(sweep_dir, conf, name, seeds, metric)
    lines = []
    for option, op, trial, score in options:
        settings = ", ".join(f"{k}={yaml_value(v)}" for k, v in zip(tuning.tuned, trial))
        lines.append(f"{option}: {settings} ({score:.2f})")
    lines.append(f"wrote {conf / 'experiment' / (name + '.yaml')} and {len(options)} options in {conf / 'tuned'}")
    return lines
