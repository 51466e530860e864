import os
from pathlib import Path

import pytest
import torch

# Tests run on 2 CPU cores in CI: keep torch from oversubscribing them.
torch.set_num_threads(min(2, os.cpu_count() or 1))

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real label files in ../shared/data (FineGym, SSv1, Diving48, Kinetics)."""
    if not SHARED_DATA.is_dir():
        if os.environ.get("CI"):  # CI always has shared/ beside the clone: its absence is a failure there
            pytest.fail(f"shared data not found at {SHARED_DATA}")
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_gym(tmp_path_factory):
    """A tiny synthetic FineGym-like dataset (real H.264 clips, FineGym split/category files): 16 + 15 clips."""
    from fineact.demo import ensure_dataset

    return ensure_dataset(tmp_path_factory.mktemp("tiny_gym") / "data", num_train=16, num_val=15, size=32,
                          num_frames=32, seed=3)


def tiny_experiment(ds, out_dir, **sections) -> dict:
    """A config dict for a tiny single-level SlowOnly on `ds` (sections override the defaults key by key)."""
    config = {
        "name": "tiny", "seed": 0, "output_dir": str(out_dir),
        "model": {"name": "slowonly_r50", "args": {"depth": 18, "base_channels": 4, "num_frames": 4,
                                                   "frame_interval": 4, "dropout": 0.5}},
        "data": {"format": "finegym", "labels": "finegym",
                 "train": {"annotations": str(ds.train_list), "data_root": str(ds.videos_dir)},
                 "val": {"annotations": str(ds.val_list), "data_root": str(ds.videos_dir)},
                 "categories": str(ds.categories_file), "set_categories": str(ds.set_categories_file),
                 "resize": [32], "crop_size": 24, "batch_size": 4, "num_workers": 0},
        "optim": {"lr": 0.05},
        "schedule": {"kind": "cosine", "warmup_epochs": 0.5},
        "trainer": {"max_epochs": 2, "progress_bar": False, "log_every_n_steps": 1, "deterministic": True},
    }
    for section, values in sections.items():
        if isinstance(values, dict) and isinstance(config.get(section), dict):
            config[section] = {**config[section], **values}
        else:
            config[section] = values
    return config


def write_config(path: Path, config: dict) -> Path:
    """`config` as a YAML file at `path` (for a `fineact` process started by a test)."""
    from omegaconf import OmegaConf

    path.write_text(OmegaConf.to_yaml(OmegaConf.create(config)))
    return path


def train_killed_mid_epoch(config_path: Path, epoch: int, batch_idx: int, timeout: int = 900):
    """Train `config_path` in a child process that SIGKILLs itself after batch `batch_idx` of `epoch` (no
    clean-up, no final checkpoint); -> the finished subprocess, its return code asserted to be the kill."""
    import signal
    import subprocess
    import sys

    script = config_path.with_name("killer.py")
    script.write_text(f"""
import os, signal, sys
import lightning as L
from fineact.config import load_config
from fineact.engine.run import train

class KillMidEpoch(L.Callback):
    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.current_epoch == {epoch} and batch_idx == {batch_idx}:
            os.kill(os.getpid(), signal.SIGKILL)

train(load_config(sys.argv[1]), callbacks=[KillMidEpoch()])
""")
    done = subprocess.run([sys.executable, str(script), str(config_path)], capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def one_thread():
    """The clips here are tiny: intra-op threads would only add synchronisation (costly on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True, scope="module")
def _close_pooled_videos():
    """After each test module: the per-worker pool of open videos (data/video_pool.py, untrimmed FineGym) keeps
    one decoded frame alive per video, and later tests count live frames."""
    yield
    from fineact.data.video_pool import close_videos

    close_videos()
