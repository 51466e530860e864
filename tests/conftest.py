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
