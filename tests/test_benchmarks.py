"""Smoke runs of the benchmark scripts at toy sizes: they run, print a table and write the JSON they promise.

The figures themselves come from full-size runs (README, benchmarks/results/); here only their shape is checked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run_script(script: str, args: list[str], results: Path) -> dict:
    env = {**os.environ, "FINEACT_BENCHMARK_RESULTS": str(results)}
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), *args], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    name = args[args.index("--name") + 1]
    payload = json.loads((results / f"{name}.json").read_text())
    assert payload["machine"]["torch"] and payload["command"].endswith(" ".join(args))
    return payload | {"stdout": done.stdout}


@pytest.mark.slow
def test_train_step_benchmark_reports_every_model_and_variant(tmp_path):
    args = ["--device", "cpu", "--models", "tsm_r18", "arc_tsm_r18", "--variants", "fp32", "bf16",
            "--frames", "2", "--size", "32", "--batch", "1", "--repeats", "1", "--name", "smoke"]
    payload = run_script("train_step.py", args, tmp_path)
    got = {(r["variant"], r["model"]) for r in payload["results"]}
    assert got == {(v, m) for v in ("fp32", "bf16") for m in ("tsm_r18", "arc_tsm_r18")}
    assert all(r["clips_per_second"] > 0 for r in payload["results"])
    assert "clips/s" in payload["stdout"]


@pytest.mark.slow
def test_arc_overhead_benchmark_reports_modes_and_layouts(tmp_path):
    args = ["--steps", "2", "--modes", "plain", "bounded", "--layouts", "nchw", "channels_last", "--frames", "2",
            "--size", "32", "--batch", "1", "--repeats", "1", "--name", "smoke"]
    payload = run_script("arc_overhead.py", args, tmp_path)
    records = {r["model"]: r for r in payload["results"]}
    assert list(records) == ["tsm_r18", "arc_tsm_r18 n=2", "arc_tsm_r18 n=2 bounded",
                             "tsm_r18 [cl]", "arc_tsm_r18 n=2 [cl]", "arc_tsm_r18 n=2 bounded [cl]"]
    for base in ("tsm_r18", "tsm_r18 [cl]"):  # each layout has its own baseline
        assert records[base]["time_ratio"] == records[base]["memory_ratio"] == 1.0
        assert records[base]["inference_time_ratio"] == 1.0
    assert all(r["peak_memory_bytes"] > 0 and r["inference_seconds"] > 0 for r in records.values())
    assert {r["layout"] for name, r in records.items() if name.endswith("[cl]")} == {"channels_last"}
    assert {r["layout"] for name, r in records.items() if not name.endswith("[cl]")} == {"nchw"}
    assert records["arc_tsm_r18 n=2 [cl]"]["time_vs_nchw"] == pytest.approx(
        records["arc_tsm_r18 n=2 [cl]"]["seconds"] / records["arc_tsm_r18 n=2"]["seconds"])
    assert "time_vs_nchw" not in records["arc_tsm_r18 n=2"]
    assert "eval ratio" in payload["stdout"] and "vs nchw" in payload["stdout"]


@pytest.mark.slow
def test_arc_breakdown_benchmark_times_every_case(tmp_path):
    args = ["--steps", "2", "--frames", "2", "--size", "32", "--batch", "1", "--repeats", "1", "--name", "smoke"]
    payload = run_script("arc_breakdown.py", args, tmp_path)
    assert [r["case"] for r in payload["results"]] == ["tsm_r18", "arc", "free state update",
                                                       "free state update + Wa"]
    assert all(r["seconds"] > 0 for r in payload["results"])
    convs = {(r["model"], r["role"]): r for r in payload["convolutions"]}
    assert set(convs) == {("tsm_r18", "convs ARC decorates"), ("tsm_r18", "convs ARC leaves alone"),
                          ("arc_tsm_r18", "ARC part convs"), ("arc_tsm_r18", "We (X + We·X)"),
                          ("arc_tsm_r18", "Wf (fusion)"), ("arc_tsm_r18", "convs ARC leaves alone")}
    # the parts split each conv by output channels: together they do exactly the decorated convs' work
    assert convs["arc_tsm_r18", "ARC part convs"]["gflops"] == pytest.approx(
        convs["tsm_r18", "convs ARC decorates"]["gflops"], rel=1e-9)
    assert convs["arc_tsm_r18", "convs ARC leaves alone"]["gflops"] == pytest.approx(
        convs["tsm_r18", "convs ARC leaves alone"]["gflops"], rel=1e-9)


@pytest.mark.slow
def test_untrimmed_benchmark_reports_both_readers_for_each_case_and_worker_count(tmp_path):
    args = ["--minutes", "0.2", "--size", "160x96", "--clips", "3", "--repeats", "1", "--workers", "1", "2",
            "--cache", str(tmp_path / "cache"), "--name", "smoke"]
    payload = run_script("untrimmed.py", args, tmp_path)
    got = {(r["case"], r["workers"]) for r in payload["rows"]}
    assert got == {(c, w) for c in ("sparse 4x16", "dense 32x2") for w in (1, 2)}
    for row in payload["rows"]:
        assert row["untrimmed_clips_per_s"] > 0 and row["trimmed_clips_per_s"] > 0
        assert row["time_ratio"] == pytest.approx(row["trimmed_clips_per_s"] / row["untrimmed_clips_per_s"])
    assert payload["size"] == [160, 96] and "time ratio" in payload["stdout"]


@pytest.mark.slow
def test_shards_benchmark_reports_files_and_pack_with_and_without_latency(tmp_path):
    pytest.importorskip("litdata")
    args = ["--videos", "4", "--frames", "40", "--workers", "1", "--repeats", "1", "--resize", "64", "--crop",
            "48", "--name", "smoke"]
    payload = run_script("shards.py", args, tmp_path)
    got = {(r["storage"], r["case"]) for r in payload["results"]}
    assert got == {(s, c) for s in ("local disk", "+5-20 ms per open") for c in ("sparse 4x16", "dense 32x2")}
    assert all(r["files_clips_per_second"] > 0 and r["pack_clips_per_second"] > 0 for r in payload["results"])
    assert 0.5 < payload["pack_over_source"] < 1.5 and "pack / files" in payload["stdout"]


@pytest.mark.slow
def test_loader_stages_benchmark_times_every_stage_and_pipeline(tmp_path):
    args = ["--sizes", "64x48", "--cases", "sparse 4x16", "--clips", "1", "--repeats", "1", "--workers", "1",
            "--threads", "1", "--name", "smoke"]
    payload = run_script("loader_stages.py", args, tmp_path)
    stages = {r["pipeline"]: r for r in payload["stages_ms"]}
    assert set(stages) == {"float", "uint8"} and "device_norm" in stages["uint8"]
    assert stages["uint8"]["total"] == pytest.approx(sum(stages["uint8"][s] for s in (
        "decode", "convert", "resize", "crop/flip", "float+norm", "collate", "transfer")))
    loader = {r["pipeline"]: r for r in payload["loader"]}
    assert loader["float"]["speedup_vs_float"] == 1.0 and loader["uint8"]["clips_per_s"] > 0
    assert loader["uint8"]["ratio_min"] <= loader["uint8"]["ratio_vs_decode_only"] <= loader["uint8"]["ratio_max"]
    assert [(r["workers"], r["decode_threads"]) for r in payload["decoder_threads"]] == [(1, 1)]
    assert 0 <= payload["pixel_difference"][0]["mean"] <= payload["pixel_difference"][0]["max"]
    assert "(d) |uint8 pipeline - float pipeline|" in payload["stdout"]


@pytest.mark.slow
def test_checkpoint_cost_benchmark_reports_milliseconds_and_share_of_a_step(tmp_path):
    args = ["--model", "tsm_r18", "--frames", "2", "--size", "32", "--batch", "1", "--steps", "2", "--warmup", "0",
            "--name", "smoke"]
    payload = run_script("checkpoint_cost.py", args, tmp_path)
    (record,) = payload["results"]
    assert record["checkpoint_ms"] > 0 and record["step_ms"] > 0 and record["checkpoint_mb"] > 1
    assert record["checkpoint_share_of_step"] == pytest.approx(record["checkpoint_ms"] / record["step_ms"])
    assert "% of a step" in payload["stdout"]
