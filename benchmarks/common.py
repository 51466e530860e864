"""Shared helpers for the benchmark scripts: machine description, interleaved timing, JSON output."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

# results/ next to the scripts; FINEACT_BENCHMARK_RESULTS redirects it (the smoke tests write to a temp dir)
RESULTS = Path(os.environ.get("FINEACT_BENCHMARK_RESULTS") or Path(__file__).resolve().parent / "results")


def machine_info() -> dict:
    import torch

    info = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "python": sys.version.split()[0],
            "torch": torch.__version__}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def interleaved_median_times(cases: dict[str, Callable[[], None]], repeats: int, warmup: int = 2) -> dict[str, float]:
    """Median seconds per call of each case, running the cases round-robin so drift hits them all alike."""
    for fn in cases.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in samples.items()}


def add_host_memory_option(parser) -> None:
    parser.add_argument("--host-memory", choices=["reuse", "release"], default="reuse",
                        help="reuse: glibc keeps freed memory as `fineact train` makes it do (trainer."
                             "reuse_host_memory); release: the C library's defaults")


def apply_host_memory(choice: str) -> bool:
    """Set up host memory as `fineact train` does (or leave the defaults); True if reuse is in effect."""
    if choice != "reuse":
        return False
    from fineact.engine.host_memory import reuse_freed_memory

    return reuse_freed_memory()


def write_results(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"command": " ".join([Path(sys.executable).name] + sys.argv), "machine": machine_info(), **payload}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def print_table(headers: list[str], rows: list[list]) -> None:
    cells = [[str(h) for h in headers]] + [[f"{c:.3f}" if isinstance(c, float) else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for k, row in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))
        if k == 0:
            print("  ".join("-" * w for w in widths))
