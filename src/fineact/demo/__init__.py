"""`fineact demo` and the embedded synthetic dataset it trains on.

- `dataset`: generates (once, cached) a small FineGym look-alike on disk: H.264 clips and FineGym-format
  split, category and set files, read back by the real FineGym readers (`ensure_dataset`).
- `run`: the demo job, the two-stage hierarchical multi-task recipe on that dataset (`run_demo`, `finish_demo`).

Importing this package loads only numpy: the training stack is imported when the demo runs, because the
generator's worker processes import the package too.
"""

from fineact.demo.dataset import (ELEMENTS, EVENTS, SETS, SyntheticDataset, default_demo_params, describe,
                                  ensure_dataset, generate_dataset, render_clip)
from fineact.demo.run import base_config, finish_demo, format_summary, multitask_config, run_demo

__all__ = ["ELEMENTS", "EVENTS", "SETS", "SyntheticDataset", "base_config", "default_demo_params", "describe",
           "ensure_dataset", "finish_demo", "format_summary", "generate_dataset", "multitask_config",
           "render_clip", "run_demo"]
