"""Host memory reuse (engine/host_memory.py): after it, repeated large allocations stop faulting pages in."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import resource, sys, torch
from fineact.engine.host_memory import reuse_freed_memory
done = reuse_freed_memory() if sys.argv[1] == "reuse" else False
for _ in range(5):                                    # 64 MiB blocks; the first few grow the heap
    torch.ones(16 * 2**20).sum()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    torch.ones(16 * 2**20).sum()
print(done, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(mode: str) -> tuple[bool, int]:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True).stdout
    done, count = out.split()
    return done == "True", int(count)


def test_freed_memory_is_reused_instead_of_faulted_in_again():
    done, reused = faults("reuse")
    if not done:
        pytest.skip("not glibc: reuse_freed_memory is a no-op here")
    _, released = faults("release")
    pages = 20 * 64 * 2**20 // 4096
    assert released > pages // 2      # the C library's defaults: every 64 MiB block faults its pages in again
    assert reused < released // 4     # kept for reuse: none once the heap has grown (at most 2 of 20 seen)


def test_training_config_switches_it():
    from fineact.config import TrainerConfig

    assert TrainerConfig().reuse_host_memory is True
