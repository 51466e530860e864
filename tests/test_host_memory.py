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


@pytest.mark.parametrize("enabled", [True, False])
def test_the_trainer_config_switches_it(enabled, tiny_gym, tmp_path, monkeypatch):
    from conftest import tiny_experiment
    from fineact.config import load_config
    from fineact.engine import trainer

    calls = []
    monkeypatch.setattr(trainer, "reuse_freed_memory", lambda: calls.append(1) or True)
    cfg = load_config(base=tiny_experiment(tiny_gym, tmp_path, trainer={"reuse_host_memory": enabled}))
    trainer.build_trainer(cfg, tmp_path)
    assert len(calls) == (1 if enabled else 0)
