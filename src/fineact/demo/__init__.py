"""`fineact demo` and the embedded synthetic dataset it trains on, one job per module.

- `classes`: the dataset's events, sets and elements (FineGym's numbering and file conventions).
- `scenes`: drawing one clip of an element, each level of the hierarchy shown by its own kind of evidence.
- `dataset`: generating (once, cached) the dataset on disk: H.264 clips and FineGym-format split, category and
  set files, read back by the real FineGym readers (`ensure_dataset`).
- `run`: the demo job, the two-stage hierarchical multi-task recipe on that dataset (`run_demo`, `finish_demo`).

Importing this package loads only numpy: the training stack is imported when the demo runs, because the
generator's worker processes import the package too.
"""

from fineact.demo.classes import ELEMENTS, EVENTS, SETS
from fineact.demo.dataset import SyntheticDataset, default_demo_params, ensure_dataset, generate_dataset
from fineact.demo.run import base_config, finish_demo, format_summary, multitask_config, run_demo
from fineact.demo.scenes import describe, render_clip

__all__ = ["ELEMENTS", "EVENTS", "SETS", "SyntheticDataset", "base_config", "default_demo_params", "describe",
           "ensure_dataset", "finish_demo", "format_summary", "generate_dataset", "multitask_config",
           "render_clip", "run_demo"]
