"""``trainer.threads``: how many torch intra-op threads a CPU run uses.

``auto`` (the default) times a few forward + backward passes of the run's own model on a batch of its
size, with 1 thread and with all usable cores (and, on machines with more than 2 cores, a quarter and half
of them), interleaved in rounds, best of each, and keeps the fewest threads within ``TOLERANCE`` of the
fastest. All cores are faster for one job on an idle machine (tiny DemoNet: ~1.5x here), but with another
CPU-bound process on the cores every parallel region waits for its descheduled thread, and all cores
collapse (the tiny DemoNet: 980 vs 13,508 img/s with 1 thread): no fixed count is close to the best in both
cases, a probe of the machine as it is at the start is. The probe runs on a copy of the model under
``torch.random.fork_rng``, so the run's weights, BatchNorm statistics and random stream are untouched.

The choice is logged, recorded in the run's result (``threads``) and kept in its checkpoint, so a resumed
run goes on with the count it started with. Results are reproducible bit for bit for a given thread
count (docs/reproduction.md), not across counts: pin ``trainer.threads=N`` to rerun a recorded result on a
machine whose load differs. ``null`` = all usable cores; an integer = that many.
"""
from __future__ import annotations

import copy
import logging
import os
import time
from contextlib import nullcontext
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from starnet.kernels import said_while_slow

from ..errors import StarbenchError

log = logging.getLogger("starbench")

AUTO = "auto"
TOLERANCE = 0.05  # within 5% of the fastest, fewer threads win: they collapse less if load arrives later
PROBE_ROUNDS = 3
DROP_AFTER = 3.0  # a count whose warm-up step is this many times the fastest warm-up is not timed again


def max_threads() -> int:
    """All cores this process may use: ``OMP_NUM_THREADS`` when set (the user's cap), else the cores of
    its CPU affinity. Not ``torch.get_num_threads()``, which an earlier run in this process may have set."""
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS/Windows
        return os.cpu_count() or 1


def parse_threads(value, key: str = "trainer.threads") -> Union[int, str, None]:
    """``auto``, ``null`` or a positive integer; anything else is a one-line error."""
    if value is None or value == AUTO:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise StarbenchError(f"{key} must be a positive integer, 'auto' or null (all cores), got {value!r}")
    return value


def candidates(most: int) -> List[int]:
    """The thread counts the probe tries: 1, a quarter, half and all of ``most`` cores."""
    if most < 1:
        raise ValueError(f"need at least one core, got {most}")
    return sorted({1, most // 4, most // 2, most} - {0})


def pick(times: Mapping[int, float], tolerance: float = TOLERANCE) -> int:
    """The fewest threads whose time (seconds per step) is within ``tolerance`` of the fastest."""
    if not times:
        raise ValueError("no probe times to pick from")
    bad = {n: t for n, t in times.items() if not (t > 0 and t == t and t != float("inf"))}
    if bad:
        raise ValueError(f"probe times must be positive and finite, got {bad}")
    fastest = min(times.values())
    return min(n for n, t in times.items() if t <= fastest * (1 + tolerance))


def probe(step: Callable[[], None], counts: Sequence[int], rounds: int = PROBE_ROUNDS,
          drop_after: float = DROP_AFTER) -> Dict[int, float]:
    """Seconds per ``step`` at each thread count, by the repo's timing harness: one untimed first step (at
    the fewest threads: allocations, kernels compiled on first use), one warm-up step at each count, then
    ``rounds`` interleaved rounds (the order reversed every other round), best of each count's warm-up and
    rounds; two steps per timing when a step is short (< 0.5 s). A count whose warm-up step took more than
    ``drop_after`` times the fastest warm-up sits the rounds out (its time is its warm-up's): on a busy
    machine all cores can be 20x slower, and the probe should not pay for that again. Leaves torch at the
    thread count it found."""
    from .timing import interleaved
    before = torch.get_num_threads()

    def at(n: int) -> Callable[[], None]:
        def run() -> None:
            torch.set_num_threads(n)
            step()
        return run

    try:
        start = time.perf_counter()
        at(min(counts))()
        iters = 2 if time.perf_counter() - start < 0.5 else 1
        warm = interleaved({str(n): at(n) for n in counts}, 0, warmup=1).warmup_s
        best = {n: warm[str(n)] for n in counts}
        alive = [n for n in counts if best[n] <= drop_after * min(best.values())]
        if rounds > 0:
            timed = interleaved({str(n): at(n) for n in alive}, rounds, iters=iters, alternate=True)
            best.update({n: min(best[n], *timed.times[str(n)]) for n in alive})
        return best
    finally:
        torch.set_num_threads(before)


def training_step(model: nn.Module, batch_size: int, input_shape: Tuple[int, int, int], num_classes: int,
                  channels_last: bool = False, autocast=None) -> Callable[[], None]:
    """A forward + backward pass of a copy of ``model`` (train mode) on a random batch, as the training
    step runs it, without touching ``model``; the copy and the batch live as long as the callable."""
    net = copy.deepcopy(model).train()
    gen = torch.Generator().manual_seed(0)
    device = next(net.parameters()).device
    x = torch.randn(batch_size, *input_shape, generator=gen).to(device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, num_classes, (batch_size,), generator=gen).to(device)
    params = [p for p in net.parameters() if p.requires_grad]
    autocast = autocast or nullcontext()

    def step() -> None:
        with autocast:
            loss = nn.functional.cross_entropy(net(x).float(), y)
        torch.autograd.grad(loss, params)  # gradients returned and dropped: no .grad left on the copy
    return step


def choose_threads(setting, step_factory: Callable[[], Callable[[], None]], most: Optional[int] = None,
                   probe_fn=probe) -> Tuple[int, Optional[Dict[int, float]]]:
    """The thread count for ``setting`` (``auto``, ``null`` or an integer) and the probe's seconds per
    step by thread count (None without a probe). ``step_factory`` builds the probed step (only called
    for ``auto`` on a machine with more than one core)."""
    setting = parse_threads(setting)
    most = max_threads() if most is None else most
    if setting is None:
        return most, None
    if setting != AUTO:
        return setting, None
    if most == 1:
        return 1, None
    with torch.random.fork_rng(devices=[]):  # the model's dropout/drop path draws must not move the run's stream
        times = probe_fn(step_factory(), candidates(most))
    return pick(times), times


def set_threads(setting, step_factory: Callable[[], Callable[[], None]], saved: Optional[int] = None,
                announce: bool = True) -> int:
    """Set torch's intra-op threads for a CPU run from ``setting`` (``trainer.threads``), the one place a run sets
    them, and log the choice. ``auto`` keeps ``saved``, the count a resumed run's checkpoint was trained with (its
    remaining steps then compute as an uninterrupted run's would), and otherwise probes the machine as it is now
    with ``step_factory()``'s step. ``announce``: log at INFO (else DEBUG: DDP's other ranks)."""
    if setting == AUTO and saved is not None:
        threads, how = saved, f"{saved} (the resumed checkpoint's)"
    else:
        with said_while_slow(f"trainer.threads={setting}: timing training steps of this model with 1 thread and "
                             f"with all {max_threads()} cores (its first step also compiles what the model runs)",
                             "trainer.threads: still timing (%.0f s)", "trainer.threads: timed in %.0f s", log):
            threads, times = choose_threads(setting, step_factory)
        how = describe(threads, times)
    torch.set_num_threads(threads)
    (log.info if announce else log.debug)("trainer.threads=%s: %s", setting, how)
    return threads


def describe(threads: int, times: Optional[Mapping[int, float]]) -> str:
    """One log line's worth: the choice and the probe's times."""
    if not times:
        return f"{threads} thread{'s' if threads > 1 else ''}"
    probed = ", ".join(f"{n}: {t * 1e3:.1f}" for n, t in sorted(times.items()))
    return f"{threads} thread{'s' if threads > 1 else ''} (probe, ms per step by thread count: {probed})"


__all__ = ["AUTO", "TOLERANCE", "max_threads", "parse_threads", "candidates", "pick", "probe", "training_step",
           "choose_threads", "set_threads", "describe"]
