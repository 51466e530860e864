"""Export trained fineact models for deployment: TorchScript, ONNX, torch.export (.pt2).

    path = export_model(model, "tsm_r50.onnx", format="onnx", class_names={"action": names})
    diff = verify_export(model, path)          # max |exported - eager| on random clips

Every registered model exports, the TSM shift (slices + torch.cat) and the ARC layers included. The exported
graph takes positional float clips (N, C, T, H, W), already normalised, in a fixed order:

    single-clip models (TSN/TSM/ARC-TSM, SlowOnly, SlowFast, SlowFast multi-task)   one input "clip"
    HierarchicalMultiTask                                                            one input per pathway, in
                                                                                     model.clip_specs order
                                                                                     (event, set, element)

and returns the logits: one tensor for single-level models, a tuple in level order (coarse -> fine) for
multi-level ones. The batch axis is dynamic; T, H and W are fixed to the exported sizes (the ARC layers and the
shift are specialised to them; the .pt2 and ONNX files check it, TorchScript does not). A JSON file next to
the export (`<file>.json`, schema in `fineact.interop.sidecar`) says all of this for deployment code: input
names, order, shapes, frames and their sampling (segments or frame interval), normalisation mean/std, output
names, class counts and class names.

Formats:
    "exported-program"  torch.export.export + torch.export.save (.pt2); load with torch.export.load(path).module().
                        PyTorch's successor to TorchScript: prefer it for Python / C++ (AOTInductor) deployment.
    "torchscript"       torch.jit.trace (.pt); load with torch.jit.load. Deprecated upstream (torch.jit.save /
                        load warn in PyTorch 2.13) but still what many C++ (libtorch) deployments read.
    "onnx"              torch.onnx.export(dynamo=True): the TorchDynamo-based exporter, the one PyTorch develops
                        (the legacy TorchScript-based one is deprecated); default opset 18, recorded in the JSON.
                        Needs the optional packages onnx and onnxscript (`pip install fineact[export]`);
                        `verify_export` runs ONNX files in onnxruntime (same extra).
"""

from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

from fineact.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from fineact.errors import FineactError, ModelError
from fineact.interop.sidecar import EXPORT_FORMATS, read_sidecar, sidecar_path, write_sidecar
from fineact.models.multitask import HierarchicalMultiTask

_ONNX_HINT = "ONNX export needs the optional packages onnx and onnxscript: pip install 'fineact[export]'"
_ORT_HINT = "running ONNX files needs onnxruntime: pip install 'fineact[export]'"


class ExportWrapper(nn.Module):
    """Positional clips in `input_names` order -> logits (one tensor) or a tuple in `output_names` order.

    Lets dict-in / dict-out models (the multi-task networks) go through exporters that take tensors only.
    """

    def __init__(self, model: nn.Module, input_names: Sequence[str], output_names: Sequence[str],
                 dict_input: bool):
        super().__init__()
        self.model = model
        self.input_names = list(input_names)
        self.output_names = list(output_names)
        self.dict_input = dict_input

    def forward(self, *clips: torch.Tensor):
        out = _call(self.model, clips, self.input_names, self.dict_input)
        if isinstance(out, Mapping):
            return tuple(out[name] for name in self.output_names)
        return out


def _call(model: nn.Module, clips, names: Sequence[str], dict_input: bool):
    """The model's own output for positional clips."""
    return model(_forward_input(clips, names, dict_input))


def _forward_input(clips, names: Sequence[str], dict_input: bool):
    return dict(zip(names, clips)) if dict_input else clips[0]


def model_input(model: nn.Module, clips: Sequence[torch.Tensor]):
    """What `model`'s forward takes for positional clips in its input order (as `make_example_inputs` gives
    them): the clip itself, or {pathway: clip} for multi-pathway models."""
    names, dict_input = _input_names(model)
    return _forward_input(clips, names, dict_input)


# -- inputs ------------------------------------------------------------------------------------------------------

def _input_names(model: nn.Module) -> tuple[list[str], bool]:
    specs = getattr(model, "clip_specs", None)
    if not isinstance(specs, Mapping) or not specs:
        raise ModelError(f"{type(model).__name__} does not state its inputs (clip_specs); pass example_inputs")
    dict_input = isinstance(model, HierarchicalMultiTask) or len(specs) > 1
    return (list(specs) if dict_input else ["clip"]), dict_input


def _frames_for(model: nn.Module, names: list[str], frames) -> dict[str, int]:
    specs = model.clip_specs
    per = {name: spec.num_frames for name, spec in zip(names, specs.values())}
    if frames is None:
        return per
    if isinstance(frames, Mapping):
        unknown = [k for k in frames if k not in per]
        if unknown:
            raise ModelError(f"frames: unknown input(s) {unknown}; the model's inputs are {names}")
        return {**per, **{k: int(v) for k, v in frames.items()}}
    if len(per) > 1:
        raise ModelError(f"frames: the model has several inputs {names}; give frames as {{input: frames}}")
    return {names[0]: int(frames)}


def make_example_inputs(model: nn.Module, frames: int | Mapping[str, int] | None = None,
                   size: int | tuple[int, int] = 224, batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random normalised clips (batch, 3, T, H, W) in the model's input order (T from clip_specs or `frames`)."""
    names, _ = _input_names(model)
    h, w = (size, size) if isinstance(size, int) else size
    per = _frames_for(model, names, frames)
    gen = torch.Generator().manual_seed(seed)
    dtype = next((p.dtype for p in model.parameters()), torch.float32)
    return tuple(torch.randn(batch, 3, per[n], h, w, generator=gen).to(dtype) for n in names)


def _as_positional(inputs, names: list[str], dict_input: bool) -> tuple[torch.Tensor, ...]:
    if isinstance(inputs, torch.Tensor):
        inputs = (inputs,)
    elif isinstance(inputs, Mapping):
        if not dict_input:
            if set(inputs) != {"clip"}:
                raise ModelError(f"inputs: expected a tensor or {{'clip': tensor}}, got keys {list(inputs)}")
            inputs = (inputs["clip"],)
        else:
            missing = [n for n in names if n not in inputs]
            if missing:
                raise ModelError(f"inputs: missing pathway(s) {missing}; expected keys {names}")
            inputs = tuple(inputs[n] for n in names)
    inputs = tuple(inputs)
    if len(inputs) != len(names) or not all(isinstance(x, torch.Tensor) for x in inputs):
        raise ModelError(f"inputs: expected {len(names)} tensor(s) in the order {names}")
    return inputs


# -- metadata ------------------------------------------------------------------------------------------------------

def _class_names(class_names, output_names: list[str], sizes: list[int]) -> dict[str, list[str] | None]:
    if class_names is None:
        return {n: None for n in output_names}
    if hasattr(class_names, "class_names") and hasattr(class_names, "level_names"):  # fineact.labels.LabelLevels
        class_names = {level: class_names.class_names[level] for level in class_names.level_names}
    if not isinstance(class_names, Mapping):
        if len(output_names) != 1:
            raise ModelError(f"class_names: the model has outputs {output_names}; give {{output: names}}")
        class_names = {output_names[0]: list(class_names)}
    if len(output_names) == 1 and len(class_names) == 1 and output_names[0] not in class_names:
        class_names = {output_names[0]: next(iter(class_names.values()))}
    out = {}
    for name, size in zip(output_names, sizes):
        names = class_names.get(name)
        if names is not None and len(names) != size:
            raise ModelError(f"class_names[{name!r}] has {len(names)} names, the output has {size} classes")
        out[name] = [str(n) for n in names] if names is not None else None
    unknown = [k for k in class_names if k not in out]
    if unknown:
        raise ModelError(f"class_names: unknown output(s) {unknown}; outputs are {output_names}")
    return out


def _metadata(model: nn.Module, names: list[str], inputs: tuple[torch.Tensor, ...],
              output_names: list[str], outputs: list[torch.Tensor], graph_names: tuple[list[str], list[str]],
              classes: dict, mean, std, dynamic_batch: bool, extra: dict) -> dict:
    """The graph fields of the sidecar (`fineact.interop.sidecar.GRAPH_FIELDS` and more)."""
    specs = list(model.clip_specs.values())
    batch: Any = "batch" if dynamic_batch else inputs[0].shape[0]
    described_inputs = []
    for i, (name, x) in enumerate(zip(names, inputs)):
        spec = specs[i] if i < len(specs) else None
        interval = getattr(spec, "frame_interval", None)
        described_inputs.append({
            "name": name, "graph_name": graph_names[0][i],
            "position": i, "shape": [batch, *x.shape[1:]], "dtype": str(x.dtype).replace("torch.", ""),
            "layout": "N,C,T,H,W", "num_frames": int(x.shape[2]),
            "sampling": "segments" if interval is None else "dense",
            "frame_interval": interval,
            "note": ("one frame per segment over the whole video (TSN sampling)" if interval is None
                     else f"{x.shape[2]} consecutive frames {interval} apart"),
        })
    return {
        "model": {"name": getattr(model, "registry_name", None), "class": type(model).__name__,
                  "arc": {k: list(v) if isinstance(v, tuple) else v
                          for k, v in (getattr(model, "arc_config", None) or {}).items()} or None,
                  "parameters": sum(p.numel() for p in model.parameters())},
        "inputs": described_inputs,
        "input_order": names,
        "outputs": [{"name": n, "graph_name": graph_names[1][i],
                     "position": i, "shape": [batch, int(o.shape[-1])], "kind": "logits",
                     "num_classes": int(o.shape[-1]), "class_names": classes.get(n)}
                    for i, (n, o) in enumerate(zip(output_names, outputs))],
        "normalisation": {"mean": list(mean), "std": list(std), "channels": "RGB",
                          "formula": "(pixel / 255 - mean) / std, per channel"},
        "dynamic_batch": dynamic_batch,
        "static_dims": "C, T, H and W must equal the shapes above; only the batch axis may vary"
                       if dynamic_batch else "every dimension must equal the shapes above",
        **extra,
    }


# -- exporters ------------------------------------------------------------------------------------------------------

@contextmanager
def _eval_mode(model: nn.Module):
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


@contextmanager
def _quiet_onnx_logs():
    # The exporter logs one warning per torchvision op it cannot register when torchvision is absent.
    loggers = [logging.getLogger(n) for n in ("torch.onnx._internal.exporter._registration",
                                               "torch.onnx._internal.exporter", "torch.onnx")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _dynamic_shapes(inputs: tuple[torch.Tensor, ...], dynamic_batch: bool):
    if not dynamic_batch:
        return None
    batch = torch.export.Dim("batch", min=1, max=4096)
    return (tuple({0: batch} for _ in inputs),)  # one entry: the *clips varargs


def _export_torchscript(wrapper: nn.Module, inputs, path: Path, **_) -> dict:
    with warnings.catch_warnings():
        # trace's notes on Python ints taken from shapes (the shapes are fixed anyway) and the notice that
        # TorchScript is deprecated upstream (the module docstring says so; "exported-program" is the successor)
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(wrapper, inputs, check_trace=False)
        torch.jit.save(traced, str(path))
    return {}


def _export_program(wrapper: nn.Module, inputs, path: Path, dynamic_batch: bool, **_) -> dict:
    program = torch.export.export(wrapper, inputs, dynamic_shapes=_dynamic_shapes(inputs, dynamic_batch))
    torch.export.save(program, str(path))
    return {}


def _export_onnx(wrapper: nn.Module, inputs, path: Path, dynamic_batch: bool, opset: int | None,
                 input_names: list[str], output_names: list[str]) -> dict:
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        raise FineactError(_ONNX_HINT) from None
    size = sum(p.numel() * p.element_size() for p in wrapper.parameters())
    with _quiet_onnx_logs(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # deprecations inside the exporter, not ours
        warnings.filterwarnings("ignore", message=".*axis name.*will not be used")  # shared batch Dim
        program = torch.onnx.export(wrapper, inputs, dynamo=True, input_names=input_names,
                                    output_names=output_names, dynamic_shapes=_dynamic_shapes(inputs, dynamic_batch),
                                    opset_version=opset, verbose=False, optimize=True)
    program.save(str(path), external_data=size > 1_800_000_000)  # protobuf's 2 GB limit
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    opsets = {imp.domain or "ai.onnx": imp.version for imp in proto.opset_import}
    return {"onnx_opset": opsets.get("ai.onnx"), "onnx_input_names": [i.name for i in proto.graph.input],
            "onnx_output_names": [o.name for o in proto.graph.output]}


_EXPORTERS: dict[str, Callable[..., dict]] = {"torchscript": _export_torchscript, "onnx": _export_onnx,
                                              "exported-program": _export_program}


def _check_format(fmt: str) -> str:
    if fmt not in EXPORT_FORMATS:
        raise ModelError(f"export format must be one of {list(EXPORT_FORMATS)}, got {fmt!r}")
    return fmt


def export_model(model: nn.Module, path: str | Path, format: str = "torchscript", example_inputs=None,
                 frames: int | Mapping[str, int] | None = None, size: int | tuple[int, int] = 224, *,
                 batch: int = 2, dynamic_batch: bool = True, class_names=None,
                 mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                 opset: int | None = None) -> Path:
    """Export `model` (in eval mode) to `path` in `format`; write `<file>.json` beside it; return the path.

    example_inputs: a clip, {pathway: clip} or a tuple in input order; by default random clips of
                    `batch` x 3 x T x `size` x `size`, T from the model's clip_specs or `frames`
                    ({pathway: T} for multi-pathway models).
    dynamic_batch:  export the batch axis as dynamic (examples need batch >= 2 for that: torch.export
                    specialises size-1 axes).
    class_names:    {output: [names]} (outputs are the levels, or "logits" for a single-level model), a
                    list for a single-level model, or a fineact LabelLevels; stored in the JSON.
    mean, std:      the normalisation the clips must get (stored in the JSON; the graph does not normalise).
    opset:          ONNX opset (default: the exporter's).
    """
    fmt = _check_format(format)
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(EXPORT_FORMATS[fmt])
    if fmt == "exported-program" and path.suffix != ".pt2":
        raise ModelError(f"{path}: torch.export archives must be named *.pt2")
    names, dict_input = _input_names(model)
    if example_inputs is None:
        inputs = make_example_inputs(model, frames, size, batch)
    else:
        inputs = _as_positional(example_inputs, names, dict_input)
    if dynamic_batch and inputs[0].shape[0] < 2:
        raise ModelError("dynamic_batch=True needs example inputs with batch >= 2 (torch.export fixes size-1 "
                         "axes); pass batch=2 or dynamic_batch=False")
    path.parent.mkdir(parents=True, exist_ok=True)
    with _eval_mode(model):
        out = _call(model, inputs, names, dict_input)
        if isinstance(out, tuple):
            raise ModelError(f"{type(model).__name__} returns a tuple; export needs a tensor or a dict of tensors")
        if isinstance(out, Mapping):
            output_names, outputs = list(out), list(out.values())
        else:
            level = _single_level_name(class_names)
            output_names, outputs = [level], [out]
        classes = _class_names(class_names, output_names, [int(o.shape[-1]) for o in outputs])
        wrapper = ExportWrapper(model, names, output_names, dict_input).eval()
        graph_names = (_graph_names("clip", names, dict_input),
                       _graph_names("logits", output_names, len(output_names) > 1))
        extra = _EXPORTERS[fmt](wrapper, inputs, path, dynamic_batch=dynamic_batch, opset=opset,
                                input_names=graph_names[0], output_names=graph_names[1])
    meta = _metadata(model, names, inputs, output_names, outputs, graph_names, classes, mean, std, dynamic_batch,
                     extra)
    write_sidecar(path, fmt, meta)
    return path


def _graph_names(kind: str, names: list[str], several: bool) -> list[str]:
    """Names inside the exported graph (ONNX needs them unique across inputs and outputs): clip_<pathway>,
    logits_<level>; plain "clip" / "logits" for a single input / output."""
    return [f"{kind}_{n}" for n in names] if several else [kind] * len(names)


def _single_level_name(class_names) -> str:
    if hasattr(class_names, "level_names") and len(class_names.level_names) == 1:
        return class_names.level_names[0]
    if isinstance(class_names, Mapping) and len(class_names) == 1:
        return str(next(iter(class_names)))
    return "logits"


# -- loading and verifying -----------------------------------------------------------------------------------------

def _format_of(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        return _check_format(fmt)
    meta = sidecar_path(path)
    if meta.is_file():
        return read_sidecar(meta, EXPORT_FORMATS)["format"]
    by_suffix = {v: k for k, v in EXPORT_FORMATS.items()}
    if path.suffix in by_suffix:
        return by_suffix[path.suffix]
    raise ModelError(f"{path}: cannot tell the export format from the suffix; pass format= one of "
                     f"{list(EXPORT_FORMATS)}")


def load_exported(path: str | Path, format: str | None = None) -> Callable[..., tuple[torch.Tensor, ...]]:
    """A callable running an exported model: positional clips (input order) -> tuple of output tensors."""
    path = Path(path)
    if not path.is_file():
        raise FineactError(f"exported model {path}: not found")
    fmt = _format_of(path, format)
    if fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location="cpu")
        module.eval()
        run = module
    elif fmt == "exported-program":
        run = torch.export.load(str(path)).module()
    else:
        try:
            import onnxruntime as ort
        except ImportError:
            raise FineactError(_ORT_HINT) from None
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feeds = [i.name for i in session.get_inputs()]

        def run(*clips):
            outs = session.run(None, {n: c.detach().cpu().numpy() for n, c in zip(feeds, clips)})
            return tuple(torch.from_numpy(o) for o in outs)

    def call(*clips):
        with torch.no_grad():
            out = run(*clips)
        return tuple(out) if isinstance(out, (tuple, list)) else (out,)

    return call


def verify_export(model: nn.Module, path: str | Path, format: str | None = None, inputs=None, *,
                  batch: int | None = None, seed: int = 1) -> float:
    """Max absolute difference between the exported model's outputs and the eager model's on the same clips.

    inputs: a clip, {pathway: clip} or a tuple in input order; by default random clips shaped as the JSON
    beside the export says (batch: the exported example's unless `batch` is given).
    """
    path = Path(path)
    if not path.is_file():
        raise FineactError(f"exported model {path}: not found")
    names, dict_input = _input_names(model)
    if inputs is None:
        meta_file = sidecar_path(path)
        if not meta_file.is_file():
            raise FineactError(f"{path}: no {meta_file.name} beside it; pass inputs=")
        meta = read_sidecar(meta_file, EXPORT_FORMATS)
        gen = torch.Generator().manual_seed(seed)
        shapes = [d["shape"] for d in meta["inputs"]]
        default_batch = 2 if meta.get("dynamic_batch") else shapes[0][0]
        n = batch or default_batch
        inputs = tuple(torch.randn(n, *s[1:], generator=gen) for s in shapes)
    else:
        inputs = _as_positional(inputs, names, dict_input)
    exported = load_exported(path, format)(*inputs)
    with _eval_mode(model):
        eager = _call(model, inputs, names, dict_input)
    eager = tuple(eager.values()) if isinstance(eager, Mapping) else (eager,)
    if len(eager) != len(exported):
        raise FineactError(f"{path}: the export returns {len(exported)} outputs, the model {len(eager)}")
    diffs = []
    for e, x in zip(eager, exported):
        if tuple(e.shape) != tuple(x.shape):
            raise FineactError(f"{path}: output shape {tuple(x.shape)} differs from the model's {tuple(e.shape)}")
        diffs.append((e.float() - x.float()).abs().max().item())
    return max(diffs)

