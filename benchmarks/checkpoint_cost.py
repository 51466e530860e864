"""What a mid-epoch checkpoint costs: milliseconds per save and its share of a training step.

    python benchmarks/checkpoint_cost.py                                   # TSM-R50, CPU, 8 x 112 x 112, batch 2
    python benchmarks/checkpoint_cost.py --model tsm_r18 --size 32 --frames 2 --steps 4 --name smoke

A real `fineact` training run (build_trainer: the atomic checkpoint writer, the run's fingerprint, the
resumable loader) on synthetic clips. Each step is timed from on_train_batch_start to on_train_batch_end
(forward, loss, backward, SGD step); after every second step the run writes `checkpoints/last.ckpt` exactly as a
`trainer.checkpoint_every_n_steps` checkpoint does (`trainer.save_checkpoint`: weights, optimiser momentum,
schedule, loop and loader state, RNG states, serialised, fsync'ed and renamed over the previous file). Saves and
steps alternate, so machine load hits both alike; medians are reported. The share of a step is what
checkpointing every step would add; every N steps it adds that share / N.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import Dataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, write_results  # noqa: E402

from fineact.config import load_config, to_dict  # noqa: E402
from fineact.data.datasets import KeyedSampler  # noqa: E402
from fineact.engine.module import RecognitionModule  # noqa: E402
from fineact.engine.resumable_loader import ResumableDataLoader  # noqa: E402
from fineact.engine.trainer import build_trainer  # noqa: E402
from fineact.labels import flat_levels  # noqa: E402

NUM_CLASSES = 174


class RandomClips(Dataset):
    """Random (3, T, S, S) clips keyed like the video datasets: no decoding in the timed step."""

    def __init__(self, length: int, frames: int, size: int):
        self.length, self.frames, self.size = length, frames, size

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, key):
        index, seed = key
        generator = torch.Generator().manual_seed(seed)
        clip = torch.randn(3, self.frames, self.size, self.size, generator=generator)
        return {"clips": clip, "label": index % NUM_CLASSES, "index": index}


class TimeStepsAndSaves(L.Callback):
    def __init__(self, path: Path):
        self.path = path
        self.steps: list[float] = []
        self.saves: list[float] = []
        self._start = 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.steps.append(time.perf_counter() - self._start)
        if batch_idx % 2 == 1:
            start = time.perf_counter()
            trainer.save_checkpoint(self.path, weights_only=False)
            self.saves.append(time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tsm_r50")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=12, help="training steps (a save after every second one)")
    parser.add_argument("--warmup", type=int, default=2, help="first steps (and their save) left out")
    parser.add_argument("--name", default="checkpoint_cost")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        cfg = load_config(base={
            "output_dir": folder, "model": {"name": args.model, "args": {"num_segments": args.frames}},
            "data": {"labels": "flat", "num_classes": NUM_CLASSES, "batch_size": args.batch, "num_workers": 0},
            "trainer": {"max_epochs": 1, "accelerator": "cpu", "devices": 1, "progress_bar": False,
                        "log_every_n_steps": 1}})
        module = RecognitionModule(to_dict(cfg), flat_levels([f"class {i}" for i in range(NUM_CLASSES)])
                                   .to_dict())
        dataset = RandomClips(args.batch * (args.steps + args.warmup), args.frames, args.size)
        loader = ResumableDataLoader(dataset, batch_size=args.batch, sampler=KeyedSampler(len(dataset), True))
        path = Path(folder) / "checkpoints" / "last.ckpt"
        timer = TimeStepsAndSaves(path)
        trainer = build_trainer(cfg, folder, validate=False, extra_callbacks=[timer])
        trainer.fit(module, train_dataloaders=loader)
        size_mb = path.stat().st_size / 2**20
    skip = args.warmup
    step = statistics.median(timer.steps[skip:])
    save = statistics.median(timer.saves[skip // 2:])
    record = {"model": args.model, "input": f"{args.batch} x 3 x {args.frames} x {args.size} x {args.size}",
              "device": "cpu", "step_ms": 1000 * step, "checkpoint_ms": 1000 * save,
              "checkpoint_share_of_step": save / step, "checkpoint_mb": size_mb,
              "steps_timed": len(timer.steps) - skip, "saves_timed": len(timer.saves) - skip // 2}
    print_table(["model", "input (B x C x T x H x W)", "step ms", "checkpoint ms", "% of a step", "checkpoint MB"],
                [[record["model"], record["input"], record["step_ms"], record["checkpoint_ms"],
                  100 * record["checkpoint_share_of_step"], size_mb]])
    print(f"results written to {write_results(args.name, {'results': [record]})}")


if __name__ == "__main__":
    main()
