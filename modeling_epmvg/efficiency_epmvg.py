# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""
CPU efficiency helpers for the scripts (never imported by the model files).

glibc returns every large freed block (>= 32 MB by default, less after its dynamic threshold adapts) to the OS and
page-faults fresh memory in on the next allocation: with EpmVG's feature maps that is tens of MB per layer, and
REFERENCE.md section 4 measured 36-41% of a batch-8 forward at 640 in page faults. Keeping freed memory in the
process removes that cost: `scripts/benchmark.py` measures it (`+malloc` cases; on this project's 2-core machine the
batch-8 train step at 640 took 26.3 s instead of 32.5 s, the batch-1 forward 0.92 s instead of 1.09 s). Where memory
comes first (gradient checkpointing), returning freed blocks to the OS sooner keeps the peak RSS down (`+release`),
and transparent huge pages make the faulting in cheaper for either (`+thp`, a restart with a glibc tunable).
"""

import ctypes
import ctypes.util
import os
import sys
from collections.abc import Mapping
from pathlib import Path


# mallopt parameter numbers from glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_MMAP_MAX = -4
# blocks this large always go back to the OS when freed (see return_freed_memory)
_RELEASE_THRESHOLD = 16 * 2**20
# glibc >= 2.35 madvises the memory malloc maps with MADV_HUGEPAGE under this tunable (read at process start only)
_HUGE_PAGES_TUNABLE = "glibc.malloc.hugetlb"
_TRANSPARENT_HUGE_PAGES_MODE = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def _mallopt(*settings: tuple[int, int]) -> bool:
    """Applies glibc `mallopt` settings; False where the C library is not glibc or a setting is refused."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # forked DataLoader workers inherit the settings; spawned processes need the environment variables instead
    return all(mallopt(parameter, value) == 1 for parameter, value in settings)


def keep_freed_memory() -> bool:
    r"""
    Tells glibc's allocator to keep freed memory for reuse instead of returning it to the OS (no mmap for large
    blocks, no trimming of the heap): repeated forwards then reuse warm pages instead of page-faulting them in again.
    The process keeps its peak memory until it exits (the train step at 640 peaked 6% higher), so use it in
    processes that repeat the same large computation: training, evaluation, batch prediction.

    Same effect as starting Python with `MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736`; call it before the
    large tensors are allocated. Does nothing (and returns False) where the C library is not glibc.

    Returns:
        `bool`: whether the allocator settings were applied.

    Examples:

    ```python
    >>> from modeling_epmvg.efficiency_epmvg import keep_freed_memory
    >>> keep_freed_memory()  # doctest: +SKIP
    True
    ```
    """
    # the trim threshold is an int here: the largest value keeps the heap from ever being trimmed
    return _mallopt((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1))


def return_freed_memory() -> bool:
    r"""
    The memory-first allocator setting, for gradient checkpointing: glibc returns every freed block of 16 MB or more
    to the OS at once. By default its mmap threshold climbs to 32 MB after the first large free, so freed feature
    maps below that stay in the heap, fragment it and raise the peak RSS above the peak of live tensors. On this
    project's 2-core machine the checkpointed batch-8 train step at 640 peaked at 4.60-4.64 GB instead of 5.05-5.18 GB,
    within the run-to-run noise of its time (a 1-2 MB threshold saved another 0.3 GB but cost 10-20% of the step).

    Same effect as starting Python with `MALLOC_MMAP_THRESHOLD_=16777216`; call it before the large tensors are
    allocated. Does nothing (and returns False) where the C library is not glibc.

    Returns:
        `bool`: whether the allocator setting was applied.

    Examples:

    ```python
    >>> from modeling_epmvg.efficiency_epmvg import return_freed_memory
    >>> return_freed_memory()  # doctest: +SKIP
    True
    ```
    """
    return _mallopt((_M_MMAP_THRESHOLD, _RELEASE_THRESHOLD))


def huge_pages_environment(environ: Mapping[str, str]) -> dict[str, str] | None:
    r"""
    `environ` with glibc's tunable that backs the memory malloc maps with transparent huge pages (2 MB instead of
    4 KB pages), or None where it would change nothing: it is set already (the user's own value, `=0` too, wins), the
    C library is not glibc 2.35 or later, or the kernel's transparent huge pages are not in `madvise` mode (`always`
    uses them anyway, `never` not at all).

    Every freed feature map that glibc hands back to the OS is page-faulted in again on its next allocation; with 2 MB
    pages that takes 512x fewer faults. On this project's 2-core machine, side by side, the batch-8 train step at 640
    took 20.9 s instead of 27.8 s with gradient checkpointing (`return_freed_memory`), 18.0 s instead of 20.6 s with
    the default allocator and 12.9 s instead of 13.6 s keeping freed memory, at the same peak RSS.

    Args:
        environ (`Mapping[str, str]`): the environment to extend, e.g. `os.environ`.

    Returns:
        `dict[str, str] | None`: the environment for a new process, or None.

    Examples:

    ```python
    >>> import os, subprocess, sys
    >>> from modeling_epmvg.efficiency_epmvg import huge_pages_environment
    >>> env = huge_pages_environment(os.environ) or dict(os.environ)
    >>> subprocess.run([sys.executable, "scripts/train.py", "--help"], env=env)  # doctest: +SKIP
    ```
    """
    if _HUGE_PAGES_TUNABLE in environ.get("GLIBC_TUNABLES", ""):
        return None
    if not _glibc_at_least(2, 35) or _transparent_huge_pages_mode() != "madvise":
        return None
    tunables = ":".join(filter(None, [environ.get("GLIBC_TUNABLES"), f"{_HUGE_PAGES_TUNABLE}=1"]))
    return {**environ, "GLIBC_TUNABLES": tunables}


def restart_with_huge_pages() -> None:
    r"""
    Restarts the running Python command (same arguments, same process id) with `huge_pages_environment`, where that
    changes anything; returns where it does not. glibc reads its tunables only when a process starts, so call it
    first thing in a script's `__main__` block, before any output or work that would be lost.

    Examples:

    ```python
    >>> from modeling_epmvg.efficiency_epmvg import restart_with_huge_pages
    >>> if __name__ == "__main__":
    ...     restart_with_huge_pages()  # doctest: +SKIP
    ```
    """
    environment = huge_pages_environment(os.environ)
    if environment is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    # orig_argv keeps `-m module` and interpreter options, which sys.argv drops
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], environment)


def _glibc_at_least(major: int, minor: int) -> bool:
    try:
        name, version = os.confstr("CS_GNU_LIBC_VERSION").split()
    except (AttributeError, ValueError, OSError):
        return False
    return name == "glibc" and tuple(int(part) for part in version.split(".")[:2]) >= (major, minor)


def _transparent_huge_pages_mode() -> str | None:
    """The bracketed choice of the kernel's setting, e.g. "madvise" from "always [madvise] never"."""
    try:
        setting = _TRANSPARENT_HUGE_PAGES_MODE.read_text()
    except OSError:
        return None
    return setting.partition("[")[2].partition("]")[0] or None


def compile_for_inference(model):
    r"""
    `torch.compile` for inference with inductor's `freezing`: the weights become constants, so the convolution
    weights scaled by their frozen BatchNorms are computed once (not on every call) and the ReLUs fuse. On this
    project's 2-core CPU machine the batch-1 forward at 640 took 0.79 s instead of 0.92 s (both keeping freed
    memory), after a one-off compilation of about a minute, so it pays off for evaluating whole splits, not for a
    handful of images.

    Args:
        model (`torch.nn.Module`): a model in eval mode; its weights must not change afterwards.

    Returns:
        The compiled module (call it like the model).

    Examples:

    ```python
    >>> from modeling_epmvg.efficiency_epmvg import compile_for_inference
    >>> compiled = compile_for_inference(model.eval())  # doctest: +SKIP
    ```
    """
    import torch

    if model.training:
        raise ValueError("compile_for_inference freezes the weights: call model.eval() first (it is for inference).")
    # inductor options apply to this compilation only (no process-wide config change)
    return torch.compile(model, options={"freezing": True})


__all__ = [
    "compile_for_inference",
    "huge_pages_environment",
    "keep_freed_memory",
    "restart_with_huge_pages",
    "return_freed_memory",
]
