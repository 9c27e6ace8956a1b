"""The timing harness of the benchmark scripts: warm-up, interleaved rounds, median and quartiles, JSON out.

Every side (a model, a mode, a kernel) is timed in the same rounds, round robin, so a slow spell of a shared
machine hits all sides alike; ``alternate=True`` reverses the order every other round (the side after another
pays for its memory churn). ``sync`` (e.g. ``torch.cuda.synchronize``) runs before and after each timed call.
"""
from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Union

PerSide = Union[int, Mapping[str, int]]


@dataclass
class Timings:
    """Seconds per call: ``times[side]`` holds one value per round; ``warmup_s[side]`` the warm-up's duration."""
    times: Dict[str, List[float]] = field(default_factory=dict)
    warmup_s: Dict[str, float] = field(default_factory=dict)

    def median(self, side: str) -> float:
        return statistics.median(self.times[side])


def _of(value: PerSide, side: str) -> int:
    return value[side] if isinstance(value, Mapping) else value


def interleaved(sides: Mapping[str, Callable[[], Any]], rounds: int, *, warmup: PerSide = 0, iters: int = 1,
                best_of: PerSide = 1, alternate: bool = False,
                sync: Optional[Callable[[], None]] = None,
                before: Optional[Mapping[str, Callable[[], Any]]] = None) -> Timings:
    """Warm each side up (``warmup`` calls), then ``rounds`` rounds over all sides. In a round a side is timed
    ``best_of`` times, each over ``iters`` back-to-back calls, and keeps its fastest (seconds per call).
    ``warmup`` and ``best_of`` may be given per side. ``before[side]``, untimed, runs before each of a side's
    turns (its warm-up included): a process-wide setting that belongs to one side."""
    sync = sync or (lambda: None)
    before = before or {}
    out = Timings({name: [] for name in sides})
    for name, fn in sides.items():
        before.get(name, lambda: None)()
        start = time.perf_counter()
        for _ in range(_of(warmup, name)):
            fn()
        sync()
        out.warmup_s[name] = time.perf_counter() - start
    order = list(sides.items())
    for r in range(rounds):
        for name, fn in (order[::-1] if alternate and r % 2 else order):
            before.get(name, lambda: None)()
            best = float("inf")
            for _ in range(_of(best_of, name)):
                sync()
                start = time.perf_counter()
                for _ in range(iters):
                    fn()
                sync()
                best = min(best, (time.perf_counter() - start) / iters)
            out.times[name].append(best)
    return out


def training_flops(model, x, y) -> float:
    """FLOPs of one forward + backward of ``cross_entropy(model(x), y)`` (torch's FlopCounterMode, 2 per multiply-add),
    except convolution backward: torch 2.14's counter ignores ``groups`` there and counts a depthwise conv's backward
    as a dense one (30x too much for DemoNet), so it is taken as 2x the forward convolutions (grad input + grad
    weight). Run it on a plain model: the counter sees ATen ops, not what a C++ kernel does inside."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False)
    with counter:
        torch.nn.functional.cross_entropy(model(x), y).backward()
    counts = {str(k): v for k, v in counter.get_flop_counts()["Global"].items()}
    model.zero_grad(set_to_none=True)
    conv = counts.get("aten.convolution", 0)
    return sum(v for k, v in counts.items() if k != "aten.convolution_backward") + 2 * conv


def quartiles(values: List[float]):
    """(q1, median, q3); needs at least two values."""
    q1, q2, q3 = statistics.quantiles(values, n=4)
    return q1, q2, q3


def write_json(path: Optional[Union[str, Path]], payload: Any, indent: int = 2) -> None:
    """``--json PATH``: the measurements as JSON (nothing when no path was given)."""
    if path:
        Path(path).write_text(json.dumps(payload, indent=indent))
