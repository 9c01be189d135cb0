# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""
Opt-in CPU speed settings for the command lines (never imported by the model files, never applied by default).

glibc returns large freed blocks to the OS and page-faults fresh memory in on the next allocation: with EpmVG's
feature maps that is tens of MB per layer on every forward at 640. glibc reads its allocator settings from the
environment when a process starts, so they are environment variables that the user sets for a whole run (DataLoader
workers and `accelerate launch` processes included); `ALLOCATOR_SETTINGS` names them and `allocator_environment`
builds an environment with them (the benchmark starts its cases so). docs/performance.md measures each.
"""

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


__all__ = ["ALLOCATOR_SETTINGS", "allocator_environment", "compile_for_inference"]
