"""``trainer.reuse_freed_memory``: keep freed CPU tensors' memory in the process for the next step.

PyTorch's CPU tensors come from the C library's malloc. glibc serves large blocks (from 128 KiB, a threshold
it raises to the largest block freed so far) with fresh ``mmap`` pages and hands them back with ``munmap``
when freed, and trims the heap's free top back to the system. A training step allocates its activations
and frees them in the backward, so on the next step every page is new again: the first write to each of
them is a page fault, and the kernel zeroes the page. For DemoNet d12 at width 16 (a ~2.4 MB f-output per
block and tile of the fused block), those faults were ~20% of the fast path's step (docs/performance.md §6).

With it on, blocks up to ``MMAP_MAX`` come from the heap and the heap is not trimmed below ``TRIM`` of free
memory, so a step reuses the pages of the step before. What a job computes is unchanged bit for bit (only
where its memory comes from); its resident memory stays at its peak instead of falling between steps.
glibc only (``mallopt``); elsewhere a no-op. The setting is per process and set either way at the start of
each run, as an earlier run in the same process (a joblib sweep worker) may have changed it.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
from functools import lru_cache
from typing import Optional

log = logging.getLogger("starbench")

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc malloc.h
MMAP_MAX = 32 << 20  # glibc's ceiling for the mmap threshold on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX)
TRIM = 1 << 30
DEFAULT_MMAP, DEFAULT_TRIM = 128 << 10, 128 << 10  # glibc's starting values


@lru_cache(maxsize=1)
def _libc() -> Optional[ctypes.CDLL]:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def reuse_freed_memory(on: bool) -> bool:
    """Keep freed memory for reuse (``on``) or restore glibc's starting thresholds and return free memory to
    the system. Returns whether the C library took the setting (False off glibc)."""
    libc = _libc()
    if libc is None:
        if on:
            log.debug("trainer.reuse_freed_memory: no glibc mallopt here, the C library's defaults stay")
        return False
    mmap, trim = (MMAP_MAX, TRIM) if on else (DEFAULT_MMAP, DEFAULT_TRIM)
    ok = bool(libc.mallopt(M_MMAP_THRESHOLD, mmap)) and bool(libc.mallopt(M_TRIM_THRESHOLD, trim))
    if not on:
        libc.malloc_trim(0)
    return ok
