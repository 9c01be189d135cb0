# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""The commands' CPU allocator default: glibc keeps freed memory on CPU runs, an opt-out, nothing on import."""

import json
import os
import subprocess
import sys

import pytest

from modeling_epmvg.efficiency_epmvg import ALLOCATOR_VARIABLE, use_fast_cpu_allocator


# frees a touched 64 MB tensor (above glibc's largest dynamic mmap threshold, so by default it is mapped and unmapped)
# after the call given as argv[1], and prints the call's result and the MB the OS got back
PROBE = """
import sys, torch
import modeling_epmvg, processing  # importing the packages must change nothing
from modeling_epmvg.efficiency_epmvg import use_fast_cpu_allocator

def rss_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024

applied = eval(sys.argv[1]) if sys.argv[1] else None
block = torch.ones(64 * 2**18)
before = rss_mb()
del block
print(applied, before - rss_mb())
"""

glibc_only = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc"),
    reason="glibc's mallopt",
)


def _probe(call: str, **environment: str) -> tuple[str, float, str]:
    """(the call's result, MB given back to the OS when the 64 MB tensor is freed, stderr) in a fresh process."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("MALLOC_", "GLIBC_TUNABLES"))}
    env.pop(ALLOCATOR_VARIABLE, None)
    env |= {"OMP_NUM_THREADS": "1", **environment}
    completed = subprocess.run([sys.executable, "-c", PROBE, call], env=env, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr[-2000:]
    applied, released = completed.stdout.split()
    return applied, float(released), completed.stderr


@glibc_only
def test_importing_the_packages_keeps_glibcs_allocator():
    applied, released, stderr = _probe("")
    assert released > 60  # returned to the OS at once, as glibc does by default
    assert "epmvg:" not in stderr


@glibc_only
def test_a_cpu_run_keeps_freed_memory_for_reuse_and_says_so():
    applied, released, stderr = _probe("use_fast_cpu_allocator('cpu')")
    assert applied == "True"
    assert released < 5  # neither unmapped nor trimmed off the heap
    assert stderr.count("\n") == 1 and "keeps freed memory for reuse" in stderr and ALLOCATOR_VARIABLE in stderr


@glibc_only
def test_the_opt_out_keeps_glibcs_allocator():
    applied, released, stderr = _probe("use_fast_cpu_allocator('cpu')", **{ALLOCATOR_VARIABLE: "default"})
    assert (applied, released > 60) == ("False", True)
    assert f"keeps its own settings ({ALLOCATOR_VARIABLE}=default)" in stderr


@glibc_only
@pytest.mark.parametrize(
    ("call", "environment", "reason"),
    [
        ("use_fast_cpu_allocator('cuda')", {}, None),  # not a CPU run: silent
        ("use_fast_cpu_allocator('cpu', memory_first=True)", {}, "memory first"),
        ("use_fast_cpu_allocator('cpu')", {"MALLOC_MMAP_THRESHOLD_": str(2**20)}, "the environment's"),
    ],
)
def test_other_devices_memory_first_runs_and_the_users_own_settings_keep_glibcs_allocator(call, environment, reason):
    applied, released, stderr = _probe(call, **environment)
    assert (applied, released > 60) == ("False", True)
    assert ("epmvg:" not in stderr) if reason is None else (reason in stderr)


def test_an_unknown_choice_names_the_valid_ones(monkeypatch):
    monkeypatch.setenv(ALLOCATOR_VARIABLE, "jemalloc")
    with pytest.raises(ValueError, match="use 'fast' \\(the default\\) or 'default'"):
        use_fast_cpu_allocator("cpu")


# each command's main in turn, in one process: its exit status and what it wrote on stderr
COMMANDS_PROBE = """
import contextlib, importlib, io, json, sys
results = {}
for name, argv in json.loads(sys.argv[1]).items():
    with contextlib.redirect_stderr(io.StringIO()) as stderr:
        status = importlib.import_module(f"modeling_epmvg.commands.{name}").main(argv)
    results[name] = [status, stderr.getvalue()]
print(json.dumps(results))
"""


@glibc_only
def test_the_commands_choose_the_fast_allocator_at_the_start_of_their_main(tmp_path):
    (tmp_path / "a_file").write_text("not a folder")
    missing = str(tmp_path / "missing")
    calls = {
        "train": ["--dataset_name", missing, "--output_dir", str(tmp_path / "out"), "--use_cpu", "true"],
        "evaluate": ["--model", missing, "--dataset", missing],
        "predict": [missing, "--image", missing + ".png", "--expression", "a cat", "--device", "cpu"],
        "demo": ["--output-dir", str(tmp_path / "a_file")],
    }
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("MALLOC_", "GLIBC_TUN"))}
    environment.pop(ALLOCATOR_VARIABLE, None)
    completed = subprocess.run(
        [sys.executable, "-c", COMMANDS_PROBE, json.dumps(calls)],
        env=environment | {"OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads(completed.stdout.splitlines()[-1])
    for name, (status, stderr) in results.items():
        assert status != 0, name  # the bad input comes after the allocator's choice
        assert "epmvg: CPU run: glibc malloc keeps freed memory for reuse" in stderr, (name, stderr[-2000:])
        assert f"epmvg-{name}: error: " in stderr and "Traceback" not in stderr, (name, stderr[-2000:])
    assert set(results) == set(calls)
