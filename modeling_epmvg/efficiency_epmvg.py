# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""
CPU speed settings of the command lines (never imported by the model files: importing the packages changes nothing).

glibc returns large freed blocks to the OS and page-faults fresh memory in on the next allocation: with EpmVG's
feature maps that is tens of MB per layer on every forward at 640. The commands (`epmvg-train`, `epmvg-evaluate`,
`epmvg-predict`, the demo, the benchmark) call `use_fast_cpu_allocator` at the start of their main: on a CPU run it
tells glibc through `mallopt` to keep freed memory for reuse (`EPMVG_CPU_ALLOCATOR=default` opts out). glibc also
reads its settings from the environment when a process starts: `ALLOCATOR_SETTINGS` names those variables (huge pages
stay such an opt-in) and `allocator_environment` builds an environment with them (the benchmark starts its cases so).
docs/performance.md measures each.
"""

import ctypes
import os
import sys
from collections.abc import Iterable, Mapping


# glibc's malloc tunables (environment variables read at process start); `huge_pages` goes into GLIBC_TUNABLES
ALLOCATOR_SETTINGS = {
    # keep freed memory for reuse (no mmap for large blocks, no trimming): fastest, the peak RSS stays until exit
    "keep": {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(2**36)},
    # memory first (gradient checkpointing): every freed block of 16 MB or more goes back to the OS at once
    "release": {"MALLOC_MMAP_THRESHOLD_": str(16 * 2**20)},
    # back the memory malloc maps with transparent huge pages (glibc >= 2.35, kernel THP in `madvise` mode)
    "huge_pages": {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"},
}


# the environment variable that chooses the commands' CPU allocator: "fast" (their default) or "default" (glibc's own)
ALLOCATOR_VARIABLE = "EPMVG_CPU_ALLOCATOR"
# mallopt's parameter numbers (glibc's malloc.h); a trim threshold of -1 switches trimming off (man 3 mallopt)
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
# glibc's malloc variables and tunables that set what the fast allocator sets: a user who set one keeps it
_MALLOC_VARIABLES = ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_")
_MALLOC_TUNABLES = ("glibc.malloc.mmap_max", "glibc.malloc.trim_threshold", "glibc.malloc.mmap_threshold")


def _is_cpu_run(device) -> bool:
    """Whether `device` (or, for None, the device torch picks by default) is the CPU."""
    import torch

    if device is not None:
        return torch.device(device).type == "cpu"
    accelerator = getattr(torch, "accelerator", None)  # torch >= 2.6: CUDA, XPU, MPS, ... alike
    return not (accelerator.is_available() if accelerator is not None else torch.cuda.is_available())


def _is_glibc() -> bool:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")
    except (AttributeError, ValueError, OSError):  # not a POSIX system, or a libc without the name (musl)
        return False


def use_fast_cpu_allocator(device=None, memory_first: bool = False) -> bool:
    r"""
    The commands' CPU allocator: on a CPU run with glibc, `mallopt(M_MMAP_MAX, 0)` and `mallopt(M_TRIM_THRESHOLD,
    -1)` keep freed memory in the process for reuse instead of returning it to the OS and page-faulting it in again
    on every step (the `keep` setting of `ALLOCATOR_SETTINGS`, for the process that calls it and the DataLoader
    workers it forks). The peak RSS stays until the process exits. One line on stderr says what was chosen.

    Nothing changes when `EPMVG_CPU_ALLOCATOR=default`, on other devices, without glibc, when the environment sets
    glibc's malloc variables itself (the user's choice wins), or when `memory_first` (gradient checkpointing, where
    the `release` setting is the one that helps).

    Args:
        device (`str` or `torch.device`, *optional*):
            The run's device; None for the one torch picks (an accelerator if there is one, else the CPU).
        memory_first (`bool`, *optional*, defaults to `False`):
            The run trades speed for memory (e.g. `--gradient_checkpointing`): keep glibc's defaults.

    Returns:
        `bool`: whether the fast allocator was switched on.

    Raises:
        `ValueError`: `EPMVG_CPU_ALLOCATOR` is neither `fast` nor `default`.
    """
    choice = os.environ.get(ALLOCATOR_VARIABLE, "fast")
    if choice not in ("fast", "default"):
        raise ValueError(f"{ALLOCATOR_VARIABLE}={choice!r}: use 'fast' (the default) or 'default' (glibc's own).")
    if not _is_cpu_run(device) or not _is_glibc():
        return False
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    if choice == "default":
        reason = f"{ALLOCATOR_VARIABLE}=default"
    elif any(name in os.environ for name in _MALLOC_VARIABLES) or any(name in tunables for name in _MALLOC_TUNABLES):
        reason = "the environment's glibc malloc settings"
    elif memory_first:
        reason = "memory first (gradient checkpointing; MALLOC_MMAP_THRESHOLD_=16777216 returns freed memory at once)"
    else:
        libc = ctypes.CDLL(None)
        if libc.mallopt(M_MMAP_MAX, 0) and libc.mallopt(M_TRIM_THRESHOLD, -1):
            print(
                f"epmvg: CPU run: glibc malloc keeps freed memory for reuse (M_MMAP_MAX=0, no trimming; "
                f"{ALLOCATOR_VARIABLE}=default turns this off)",
                file=sys.stderr,
            )
            return True
        reason = "mallopt refused the settings"
    print(f"epmvg: CPU run: glibc malloc keeps its own settings ({reason})", file=sys.stderr)
    return False


def allocator_environment(environ: Mapping[str, str], settings: Iterable[str]) -> dict[str, str]:
    r"""
    `environ` with glibc's allocator settings named in `settings` (keys of `ALLOCATOR_SETTINGS`), for a new process.
    A variable the user set already keeps the user's value; the huge-page tunable joins other GLIBC_TUNABLES.

    Args:
        environ (`Mapping[str, str]`): the environment to extend, e.g. `os.environ`.
        settings (`Iterable[str]`): `"keep"` or `"release"` (not both), and/or `"huge_pages"`.

    Returns:
        `dict[str, str]`: the environment for the new process.

    Examples:

    ```python
    >>> from modeling_epmvg.efficiency_epmvg import allocator_environment
    >>> allocator_environment({}, ["keep", "huge_pages"])
    {'MALLOC_MMAP_MAX_': '0', 'MALLOC_TRIM_THRESHOLD_': '68719476736', 'GLIBC_TUNABLES': 'glibc.malloc.hugetlb=1'}
    ```
    """
    settings = list(settings)
    unknown = [name for name in settings if name not in ALLOCATOR_SETTINGS]
    if unknown:
        raise ValueError(f"Unknown allocator setting(s) {unknown}: choose among {', '.join(ALLOCATOR_SETTINGS)}.")
    if "keep" in settings and "release" in settings:
        raise ValueError("Choose one of the allocator settings 'keep' (speed) and 'release' (memory), not both.")
    environment = dict(environ)
    for name in settings:
        for variable, value in ALLOCATOR_SETTINGS[name].items():
            if variable != "GLIBC_TUNABLES":
                environment.setdefault(variable, value)
            elif value.split("=")[0] not in environment.get(variable, ""):
                environment[variable] = ":".join(filter(None, [environment.get(variable), value]))
    return environment


def compile_for_inference(model):
    r"""
    `torch.compile` for inference with inductor's `freezing`: the weights become constants, so the convolution
    weights scaled by their frozen BatchNorms are computed once (not on every call) and the ReLUs fuse. The one-off
    compilation takes about a minute on a small CPU, so it pays off for evaluating whole splits, not for a handful of
    images (docs/performance.md).

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
    "ALLOCATOR_SETTINGS",
    "ALLOCATOR_VARIABLE",
    "allocator_environment",
    "compile_for_inference",
    "use_fast_cpu_allocator",
]
