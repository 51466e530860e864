"""The whole `fineact` command surface under bad arguments and files: exit status 2 and one message, no traceback.

CASES is the table: each row is a command line (placeholders below), the files to create first, and a fragment
the error message must contain. Add a row to cover a new mistake or a new subcommand. Rows run in-process
through `fineact.cli.main` (argparse's own errors arrive as SystemExit(2)).

Placeholders: {cfg} a valid tiny config, {ckpt} a fineact training checkpoint, {export} its safetensors export,
{video} a real mp4, {tmp} the case's own folder (files listed in `files` are created there).
The fault tests after the table fill a disk during checkpointing and export.
"""

from __future__ import annotations

import errno
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
import yaml

from conftest import tiny_experiment
from fineact.cli import build_parser, main


class _Reducer:
    """Pickled as a call to a harmless function: a checkpoint holding code (never run: weights_only)."""

    def __reduce__(self):
        return (os.getpid, ())


@dataclass
class Case:
    argv: str
    expect: str
    files: dict = field(default_factory=dict)  # name -> bytes | str | "DIR" | callable(ctx) -> bytes
    id: str = ""
    skip_if_cuda: bool = False  # rows about a machine without a GPU


def _truncated(name):
    return lambda ctx: ctx[name].read_bytes()[: ctx[name].stat().st_size // 2]


def _bad_sidecar(edit):
    """The export's safetensors beside a JSON description changed by `edit(dict) -> str`."""
    return {"m.safetensors": lambda ctx: ctx["export"].read_bytes(),
            "m.json": lambda ctx: edit(json.loads(ctx["export"].with_suffix(".json").read_text()))}


GPU = dict(skip_if_cuda=True)
CASES = [
    # -- models / profile
    Case("models --bogus", "unrecognized arguments", id="models-unknown-option"),
    Case("profile no_such_model", "unknown model", id="profile-unknown-model"),
    Case("profile tsm_r18 --size 0", "expected a positive integer", id="profile-size-0"),
    Case("profile tsm_r18 --frames -2", "expected a positive integer", id="profile-frames-negative"),
    Case("profile tsm_r18 --arc-stages x", "comma-separated integers", id="profile-arc-stages"),
    Case("profile tsm_r18 --num-classes abc", "expected a positive integer", id="profile-num-classes"),
    # -- train: config files and override syntax
    Case("train {tmp}/missing.yaml", "not found", id="train-config-missing"),
    Case("train {tmp}/bad.yaml", "not valid YAML", files={"bad.yaml": "model: [unclosed\n"}, id="train-config-yaml"),
    Case("train {tmp}/list.yaml", "expected a mapping", files={"list.yaml": "- 1\n- 2\n"}, id="train-config-list"),
    Case("train {cfg} optim.lrr=0.1", "did you mean 'optim.lr'", id="train-unknown-key"),
    Case("train {cfg} optim.lr", "expected dotted key=value", id="train-override-no-equals"),
    Case("train {cfg} =3", "is not a dotted key", id="train-override-empty-key"),
    Case("train {cfg} optim..lr=3", "is not a dotted key", id="train-override-double-dot"),
    Case("train {cfg} data.resize=[240,320", "malformed value", id="train-override-unclosed"),
    Case("train {cfg} optim.lr=fast", "optim.lr", id="train-override-type"),
    Case("train {cfg} data.crop_size=500", "no larger than the resized frame", id="train-crop-too-large"),
    # -- train: every value Lightning will see
    Case("train {cfg} trainer.accelerator=gpu", "'gpu' is not available", id="lightning-gpu-on-cpu", **GPU),
    Case("train {cfg} trainer.accelerator=cdua", "did you mean 'cuda'", id="lightning-accelerator-typo"),
    Case("train {cfg} trainer.accelerator=tpu", "'tpu' is not available", id="lightning-tpu-absent"),
    Case("train {cfg} trainer.devices=[0,1]", "names GPUs, but the run is on the CPU", id="lightning-gpu-list-on-cpu",
         **GPU),
    Case("train {cfg} trainer.devices=0", "trainer.devices: expected", id="lightning-devices-0"),
    Case("train {cfg} trainer.devices=many", "trainer.devices: expected", id="lightning-devices-text"),
    Case("train {cfg} trainer.precision=16-mixed", "needs a CUDA GPU", id="lightning-fp16-on-cpu", **GPU),
    Case("train {cfg} trainer.precision=17", "trainer.precision: expected one of", id="lightning-precision-typo"),
    Case("train {cfg} trainer.strategy=ddpp", "did you mean 'ddp'", id="lightning-strategy-typo"),
    Case("train {cfg} trainer.strategy=fsdp", "needs CUDA GPUs", id="lightning-fsdp-on-cpu", **GPU),
    Case("train {cfg} trainer.num_nodes=0", "positive number of machines", id="lightning-num-nodes-0"),
    Case("train {cfg} trainer.extra.max_epoch=3", "not an argument of lightning.Trainer", id="lightning-extra-key"),
    Case("train {cfg} trainer.extra.precision=16", "fineact sets this Trainer argument", id="lightning-extra-ours"),
    # -- train: output_dir and resume
    Case("train {cfg} output_dir={tmp}/afile", "is a file, but a folder is needed", files={"afile": b"x"},
         id="train-output-dir-is-file"),
    Case("train {cfg} output_dir={tmp}/afile/run", "is a file, but a folder is needed", files={"afile": b"x"},
         id="train-output-dir-under-file"),
    Case("train {cfg} output_dir={tmp}/run --resume", "the file is truncated",
         files={"run/checkpoints/last.ckpt": _truncated("ckpt")}, id="resume-truncated"),
    Case("train {cfg} output_dir={tmp}/run --resume", "the file is empty",
         files={"run/checkpoints/last.ckpt": b""}, id="resume-empty"),
    Case("train {cfg} output_dir={tmp}/run --resume", "model.args.base_channels: checkpoint 8, config 4",
         files={"run/checkpoints/last.ckpt": lambda ctx: ctx["wide_ckpt"].read_bytes()}, id="resume-other-model"),
    Case("train {cfg} output_dir={tmp}/run --resume model.args.dropout=0.1",
         "model.args.dropout: checkpoint 0.5, config 0.1",
         files={"run/checkpoints/last.ckpt": lambda ctx: ctx["ckpt"].read_bytes()}, id="resume-other-settings"),
    Case("train {cfg} output_dir={tmp}/run", "holds a previous run",  # finished: exported weights beside last.ckpt
         files={"run/checkpoints/last.ckpt": lambda ctx: ctx["ckpt"].read_bytes(),
                "run/model.safetensors": lambda ctx: ctx["export"].read_bytes()}, id="train-previous-run"),
    # -- test: checkpoint files
    Case("test {cfg}", "the following arguments are required: --checkpoint", id="test-no-checkpoint"),
    Case("test {cfg} --checkpoint {tmp}/missing.ckpt", "not found", id="test-checkpoint-missing"),
    Case("test {cfg} --checkpoint {tmp}/e.ckpt", "the file is empty", files={"e.ckpt": b""}, id="test-ckpt-empty"),
    Case("test {cfg} --checkpoint {tmp}/t.ckpt", "the file is truncated", files={"t.ckpt": _truncated("ckpt")},
         id="test-ckpt-truncated"),
    Case("test {cfg} --checkpoint {tmp}/text.ckpt", "not a PyTorch file", files={"text.ckpt": "hello"},
         id="test-ckpt-text"),
    Case("test {cfg} --checkpoint {tmp}/code.ckpt", "Python objects other than tensors",
         files={"code.ckpt": lambda ctx: _saved({"state_dict": {}, "x": _Reducer()}, ctx)}, id="test-ckpt-pickle"),
    Case("test {cfg} --checkpoint {tmp}/plain.ckpt", "not a fineact training checkpoint",
         files={"plain.ckpt": lambda ctx: _saved({"w": torch.zeros(2)}, ctx)}, id="test-ckpt-plain-weights"),
    Case("test {cfg} --checkpoint {tmp}/mixed.ckpt", "do not fit",
         files={"mixed.ckpt": lambda ctx: _saved(_mixed_checkpoint(ctx), ctx)}, id="test-ckpt-other-architecture"),
    Case("test {cfg} --checkpoint {wide_ckpt}", "but the config names model", id="test-config-other-model"),
    Case("test {cfg} --checkpoint {tmp}/m.safetensors", "cannot be read as JSON",
         files=_bad_sidecar(lambda meta: "{not json"), id="test-sidecar-malformed"),
    Case("test {cfg} --checkpoint {tmp}/m.safetensors", "missing key 'config'",
         files=_bad_sidecar(lambda meta: json.dumps({k: v for k, v in meta.items() if k != "config"})),
         id="test-sidecar-schema"),
    Case("test {cfg} --checkpoint {tmp}/m.safetensors", "fineact_export is 9",
         files=_bad_sidecar(lambda meta: json.dumps({**meta, "fineact_export": 9})), id="test-sidecar-version"),
    Case("test {cfg} --checkpoint {tmp}/m.safetensors", "the file is truncated",
         files={"m.safetensors": _truncated("export"),
                "m.json": lambda ctx: ctx["export"].with_suffix(".json").read_bytes()}, id="test-export-truncated"),
    Case("test {cfg} --checkpoint {ckpt} --split nope", "invalid choice", id="test-split-choice"),
    Case("test {cfg} --checkpoint {ckpt} --split test", "no such split", id="test-split-absent"),
    # -- predict
    Case("predict --checkpoint {export} --topk 0 {video}", "expected a positive integer", id="predict-topk-0"),
    Case("predict --checkpoint {export} --device cdua {video}", "--device: expected cpu, cuda",
         id="predict-device-typo"),
    Case("predict --checkpoint {export} --device cuda {video}", "'cuda' is not available", id="predict-device-cuda",
         **GPU),
    Case("predict --checkpoint {export} https://example.org/v.mp4", "URLs are not supported", id="predict-url"),
    Case("predict --checkpoint {export} {tmp}/missing.mp4", "missing.mp4", id="predict-video-missing"),
    Case("predict --checkpoint {tmp}/m.safetensors {video}", "the description", files={"m.safetensors": b"x"},
         id="predict-export-without-json"),
    Case("predict --checkpoint {tmp}/e.safetensors {video}", "the file is empty",
         files={"e.safetensors": b"", "e.json": lambda ctx: ctx["export"].with_suffix(".json").read_bytes()},
         id="predict-export-empty"),
    # -- extract-features
    Case("extract-features {cfg} --checkpoint {ckpt} --out {tmp}/folder", "is a folder, but a file path is needed",
         files={"folder": "DIR"}, id="features-out-is-folder"),
    Case("extract-features {cfg} --checkpoint {ckpt} --out {tmp}/afile/f.safetensors",
         "is a file, but a folder is needed", files={"afile": b"x"}, id="features-out-under-file"),
    Case("extract-features {cfg} --checkpoint {tmp}/t.ckpt --out {tmp}/f.safetensors", "the file is truncated",
         files={"t.ckpt": _truncated("ckpt")}, id="features-ckpt-truncated"),
    # -- check-data: the same config checks
    Case("check-data {cfg} trainer.devices=[0,1]", "names GPUs", id="check-data-gpu-list", **GPU),
    Case("check-data {cfg} trainer.strategy=ddpp", "did you mean 'ddp'", id="check-data-strategy"),
    Case("check-data {cfg} --workers 0", "expected a positive integer", id="check-data-workers-0"),
    # -- predict --windows
    Case("predict --checkpoint {export} {video} --windows --stride 0", "expected a positive integer",
         id="predict-windows-stride-0"),
    Case("predict --checkpoint {export} {video} --windows --out {tmp}/afile", "is a file", files={"afile": "x"},
         id="predict-windows-out-file"),
    # -- prepare
    Case("prepare finegym --annotations {tmp}/missing.json --videos {tmp} --splits {tmp}/s.txt --out {tmp}/o",
         "missing.json", files={"s.txt": "x 1\n"}, id="prepare-annotations-missing"),
    Case("prepare finegym --annotations {tmp}/bad.json --videos {tmp} --splits {tmp}/s.txt --out {tmp}/o",
         "bad.json", files={"bad.json": "{", "s.txt": "x 1\n"}, id="prepare-annotations-not-json"),
    Case("prepare finegym --annotations {tmp}/a.json --videos {tmp} --splits {tmp}/s.txt --out {tmp}/o "
         "--workers 0", "expected a positive integer", id="prepare-workers-0"),
    Case("prepare gym --annotations a --videos v --splits s --out o", "invalid choice", id="prepare-dataset"),
    # -- pack
    Case("pack {cfg} --out {tmp}/p --shard-size lots", "lots", id="pack-shard-size"),
    Case("pack {cfg} --out {tmp}/p --workers 0", "expected a positive integer", id="pack-workers-0"),
    Case("pack {cfg} --split val", "--out", id="pack-no-out"),
    # -- demo / analyze / layers / gradcam / export
    Case("demo --out {tmp}/afile", "is a file, but a folder is needed", files={"afile": b"x"}, id="demo-out-file"),
    Case("demo --base-epochs 0", "expected a positive integer", id="demo-epochs-0"),
    Case("demo --workers -1", "expected an integer >= 0", id="demo-workers-negative"),
    Case("analyze {tmp}/run --compare baseline", "expected NAME=RUN_DIR", id="analyze-compare-syntax"),
    Case("analyze {tmp}/norun", "norun", id="analyze-run-missing"),
    Case("layers no_such_model", "no_such_model", id="layers-unknown-model"),
    Case("layers {tmp}/e.ckpt", "the file is empty", files={"e.ckpt": b""}, id="layers-ckpt-empty"),
    Case("gradcam {tmp}/missing.mp4 --checkpoint {export} --out {tmp}/cam", "missing.mp4", id="gradcam-video-missing"),
    Case("gradcam {video} --checkpoint {export} --out {tmp}/afile", "is a file, but a folder is needed",
         files={"afile": b"x"}, id="gradcam-out-file"),
    Case("gradcam {video} --checkpoint {export} --target -1", "expected an integer >= 0", id="gradcam-target"),
    Case("export {tmp}/t.ckpt", "the file is truncated", files={"t.ckpt": _truncated("ckpt")},
         id="export-ckpt-truncated"),
    Case("export {ckpt} --format pdf", "invalid choice", id="export-format"),
    Case("export {ckpt} --size 0", "expected a positive integer", id="export-size-0"),
    Case("export {ckpt} --out {tmp}/folder", "is a folder, but a file path is needed", files={"folder": "DIR"},
         id="export-out-folder"),
]


def _saved(obj, ctx) -> bytes:
    path = ctx["scratch"] / "obj.pt"
    torch.save(obj, path)
    return path.read_bytes()


def _mixed_checkpoint(ctx) -> dict:
    """The run's description (config, levels) with the weights of another architecture."""
    own = torch.load(ctx["ckpt"], weights_only=True)
    other = torch.load(ctx["wide_ckpt"], weights_only=True)
    return {**own, "state_dict": other["state_dict"]}


def _checkpoint(cfg_dict: dict, path: Path) -> Path:
    """A fineact training checkpoint as Lightning writes it (weights, hyperparameters), without training."""
    from fineact.config import load_config
    from fineact.engine.run import build_module

    module = build_module(load_config(base=cfg_dict))
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams), "epoch": 0}, path)
    return path


@pytest.fixture(scope="module")
def ctx(tiny_gym, tmp_path_factory):
    from fineact.engine.checkpoints import export_weights, load_module

    root = tmp_path_factory.mktemp("surface")
    cfg_dict = tiny_experiment(tiny_gym, root / "run")
    cfg = root / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(cfg_dict))
    ckpt = _checkpoint(cfg_dict, root / "tiny.ckpt")
    wide = tiny_experiment(tiny_gym, root / "wide", model={"name": "slowonly_r50", "args": {
        **cfg_dict["model"]["args"], "base_channels": 8}})
    wide_ckpt = _checkpoint(wide, root / "wide.ckpt")
    export = export_weights(load_module(ckpt), root / "model")
    video = sorted(Path(tiny_gym.videos_dir).glob("*.mp4"))[0]
    (root / "scratch").mkdir()
    return {"cfg": cfg, "ckpt": ckpt, "wide_ckpt": wide_ckpt, "export": export, "video": video,
            "scratch": root / "scratch"}


def run_cli(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse: usage errors exit 2 with the message on stderr
        return exc.code


def test_every_subcommand_is_in_the_table():
    parser = build_parser()
    commands = set(next(a for a in parser._actions if a.dest == "command").choices)
    assert commands <= {case.argv.split()[0] for case in CASES}, "add a row for each new subcommand"


def test_the_table_is_large_enough():
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_one_message_and_exit_status_2(case, ctx, tmp_path, capsys):
    if case.skip_if_cuda and torch.cuda.is_available():
        pytest.skip("a row about a machine without a GPU")
    for name, content in case.files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content == "DIR":
            path.mkdir()
            continue
        content = content(ctx) if callable(content) else content
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    names = {key: str(value) for key, value in ctx.items()}
    argv = [word.format(tmp=tmp_path, **names) for word in case.argv.split()]
    status = run_cli(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert "weights_only=False" not in out + err and "weights_only` set to `False" not in out + err
    assert status == 2, f"exit status {status}; stderr: {err}"
    assert case.expect in err, err
    assert "bug in fineact" not in err
    if os.environ.get("FINEACT_TABLE_OUT"):  # to list every row with its message (e.g. for release notes)
        with open(os.environ["FINEACT_TABLE_OUT"], "a") as table:
            table.write(f"{case.id}\t{case.argv}\t{err.strip().replace(str(tmp_path), 'TMP')}\n")


# -- the boundary itself ------------------------------------------------------------------------------------------

def test_unexpected_exceptions_are_bugs_with_a_traceback(capsys):
    from fineact.boundary import EXIT_BUG, run_command

    def broken(args):
        raise ZeroDivisionError("a bug")

    assert run_command("x", broken, None) == EXIT_BUG
    err = capsys.readouterr().err
    assert "Traceback" in err and "ZeroDivisionError" in err and "bug in fineact" in err


@pytest.mark.parametrize("code, fragment", [(errno.ENOSPC, "the disk is full"), (errno.EACCES, "permission denied"),
                                            (errno.EROFS, "read-only"), (errno.ENOTDIR, "a folder is needed"),
                                            (errno.EISDIR, "is a folder")])
def test_operating_system_errors_name_the_file(code, fragment, capsys):
    from fineact.boundary import run_command

    def fails(args):
        raise OSError(code, os.strerror(code), "/data/out/file.bin")

    assert run_command("x", fails, None) == 2
    err = capsys.readouterr().err
    assert fragment in err and "/data/out/file.bin" in err and "Traceback" not in err


def test_a_full_disk_that_a_library_reports_as_its_own_error_is_still_named(capsys):
    from fineact.boundary import run_command

    def fails(args):
        try:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/data/model.onnx")
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc] unexpected pos")

    assert run_command("export", fails, None) == 2
    err = capsys.readouterr().err
    assert "the disk is full" in err and "/data/model.onnx" in err and "Traceback" not in err


def test_pytorch_advice_to_load_code_is_never_relayed(capsys):
    from fineact.boundary import run_command
    from fineact.errors import WeightsError

    def fails(args):
        raise WeightsError("file x: refused\nRe-running `torch.load` with `weights_only` set to `False` will work")

    assert run_command("x", fails, None) == 2
    assert "weights_only" not in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_a_folder_without_write_permission_is_refused_before_work(tmp_path):
    from fineact.errors import OutputError
    from fineact.files import check_output_dir

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="permission denied"):
            check_output_dir(locked / "run", "output_dir")
    finally:
        locked.chmod(0o700)


# -- predict keeps going past an unreadable file --------------------------------------------------------------------

def test_predict_reports_an_unreadable_file_and_predicts_the_others(ctx, tmp_path, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video")
    video = str(ctx["video"])
    status = run_cli(["predict", "--checkpoint", str(ctx["export"]), "--json", "--topk", "2", video, str(bad),
                      "http://example.org/x.mp4"])
    out, err = capsys.readouterr()
    assert status == 1
    assert list(json.loads(out)) == [video]  # --json prints the results it has
    assert "broken.mp4" in err and "URLs are not supported" in err and "2 of 3 files" in err
    assert "Traceback" not in err


# -- a full disk -------------------------------------------------------------------------------------------------

class _SmallDisk:
    """A file on a disk with `capacity` bytes left: writes past it fail with ENOSPC, as the kernel's would."""

    def __init__(self, handle, capacity: int):
        self.handle, self.left = handle, capacity

    def write(self, data) -> int:
        if len(data) > self.left:
            self.handle.write(bytes(data)[: self.left])
            self.left = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.left -= len(data)
        return self.handle.write(data)

    def __getattr__(self, name):
        return getattr(self.handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()


def _fill_disk_on(monkeypatch, module, name: str, capacity: int = 64):
    """Files named like `name` opened for writing by `module` land on a disk with `capacity` bytes left."""
    import builtins

    real_open = builtins.open

    def small_disk_open(path, mode="r", *args, **kwargs):
        handle = real_open(path, mode, *args, **kwargs)
        return _SmallDisk(handle, capacity) if "w" in mode and name in Path(path).name else handle

    monkeypatch.setattr(module, "open", small_disk_open, raising=False)


def test_a_full_disk_while_checkpointing_keeps_the_previous_checkpoint(ctx, tmp_path, monkeypatch):
    import fineact.files
    from fineact.engine.checkpoint_io import AtomicCheckpointIO
    from fineact.errors import OutputError

    io = AtomicCheckpointIO()
    last = tmp_path / "checkpoints" / "last.ckpt"
    previous = torch.load(ctx["ckpt"], weights_only=True)
    io.save_checkpoint(previous, last)
    before = last.read_bytes()
    _fill_disk_on(monkeypatch, fineact.files, "last.ckpt")
    with pytest.raises(OutputError) as info:
        io.save_checkpoint({**previous, "epoch": 1}, last)
    message = str(info.value)
    assert "disk is full" in message and str(last) in message and "previous last.ckpt is intact" in message
    assert "--resume" in message
    assert last.read_bytes() == before  # the previous checkpoint is intact, byte for byte
    assert sorted(p.name for p in last.parent.iterdir()) == ["last.ckpt"]  # no partial file left behind
    monkeypatch.undo()
    assert io.load_checkpoint(last)["epoch"] == 0


def test_a_full_disk_during_export_says_so_and_keeps_the_previous_export(ctx, tmp_path, monkeypatch, capsys):
    import fineact.files
    from fineact.engine.checkpoints import export_weights, load_module

    module = load_module(ctx["ckpt"])
    weights = export_weights(module, tmp_path / "model")
    before = weights.read_bytes()
    _fill_disk_on(monkeypatch, fineact.files, "model.safetensors")
    from fineact.boundary import run_command

    status = run_command("train", lambda args: export_weights(module, tmp_path / "model"), None)
    err = capsys.readouterr().err
    assert status == 2 and "disk is full" in err and str(weights) in err
    assert "previous model.safetensors is intact" in err
    assert weights.read_bytes() == before
    assert not any(p.name.endswith(".partial") for p in tmp_path.iterdir())


def test_a_full_disk_with_no_previous_file_says_none_was_written(tmp_path, monkeypatch):
    import fineact.files
    from fineact.errors import OutputError
    from fineact.files import atomic_write_text

    _fill_disk_on(monkeypatch, fineact.files, "results", capacity=1)
    with pytest.raises(OutputError, match="no results.json was written"):
        atomic_write_text(tmp_path / "results.json", "{}")
