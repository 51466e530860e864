"""Two DDP processes on CPU (gloo), each with two loader workers, reading packs: every sample once per epoch."""

import json
import subprocess
import sys
from collections import Counter

import pytest
from omegaconf import OmegaConf

pytest.importorskip("litdata")

from conftest import tiny_experiment  # noqa: E402
from fineact.config import load_config  # noqa: E402
from fineact.data.pack_writer import pack_split  # noqa: E402

# Lightning's DDP starts the second process by running this script again (with its rank in the environment).
SCRIPT = """
import json, os, sys
import lightning as L
from omegaconf import OmegaConf
from fineact.config import load_config
from fineact.engine.run import train

class Record(L.Callback):
    def __init__(self):
        self.seen = {}
    def _add(self, trainer, stage, batch):
        key = f"{stage}/{trainer.current_epoch}"
        self.seen.setdefault(key, []).extend(batch["index"].tolist())
    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self._add(trainer, "train", batch)
    def on_validation_batch_start(self, trainer, module, batch, batch_idx, dataloader_idx=0):
        self._add(trainer, "val", batch)
    def on_fit_end(self, trainer, module):
        out = os.path.join(sys.argv[2], f"seen_rank{trainer.global_rank}.json")
        with open(out, "w") as f:
            json.dump(self.seen, f)

train(load_config(sys.argv[1]), callbacks=[Record()])
"""


@pytest.mark.slow
def test_two_ddp_processes_read_every_packed_sample_exactly_once_per_epoch(tiny_gym, tmp_path):
    base = tiny_experiment(tiny_gym, tmp_path / "run")
    cfg = load_config(base=base)
    for split in ("train", "val"):
        pack_split(cfg, split, tmp_path / split, 20_000, progress=False)  # 4-5 shards each
    config = tiny_experiment(tiny_gym, tmp_path / "run",
                             data={"train": {"shards": str(tmp_path / "train")},
                                   "val": {"shards": str(tmp_path / "val")}, "batch_size": 2, "num_workers": 2,
                                   "persistent_workers": False},
                             trainer={"max_epochs": 2, "accelerator": "cpu", "devices": 2, "strategy": "ddp"})
    path = tmp_path / "ddp.yaml"
    path.write_text(OmegaConf.to_yaml(OmegaConf.create(config)))
    script = tmp_path / "ddp_run.py"
    script.write_text(SCRIPT)
    done = subprocess.run([sys.executable, str(script), str(path), str(tmp_path)], capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"seen_rank{rank}.json").read_text()) for rank in (0, 1)]
    for epoch in (0, 1):
        for stage, count in (("train", 16), ("val", 15)):  # 15 videos: uneven over 2 processes x 2 workers
            seen = Counter(i for rank in ranks for i in rank[f"{stage}/{epoch}"])
            assert sorted(seen) == list(range(count)), (stage, epoch, sorted(seen))
            assert set(seen.values()) == {1}, (stage, epoch, seen)  # none twice, on any rank or worker
    results = json.loads((tmp_path / "run" / "checkpoints" / "results_val.json").read_text())
    assert results["metrics"]["element"]["num_videos"] == 15
