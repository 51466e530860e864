"""The `fineact` command. Each subcommand parses its arguments here and calls the Python API.

User mistakes (FineactError) print one clear message and exit with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Callable

from fineact.errors import FineactError

Handler = Callable[[argparse.Namespace], int]


def _int_tuple(text: str) -> tuple[int, ...]:
    text = text.strip()
    if text in ("", "none", "()"):
        return ()
    try:
        return tuple(int(x) for x in text.replace("(", "").replace(")", "").split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 3,4,5, got {text!r}")


# -- profile ----------------------------------------------------------------------------------------------

def _add_profile(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("profile", help="parameter count and GMACs of registered models",
                       description="Count parameters and multiply-accumulates (GMACs, the papers' 'GFLOPs') of "
                                   "one or more registered models with PyTorch's flop counter, next to the "
                                   "figures the papers publish.")
    p.add_argument("models", nargs="+", metavar="MODEL", help="registered model names (see `fineact models`)")
    p.add_argument("--num-classes", type=int, default=None, help="classifier size (default: the model's)")
    p.add_argument("--frames", type=int, default=None, help="frames per clip T (default: the model's)")
    p.add_argument("--size", type=int, default=224, help="spatial size S of the S x S input (default 224)")
    p.add_argument("--arc-stages", type=_int_tuple, default=None, help="ARC stages, e.g. 3,4,5 or none")
    p.add_argument("--arc-steps", type=int, default=None, help="ARC recursive steps n")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=_run_profile)


def _run_profile(args: argparse.Namespace) -> int:
    from fineact.analysis.profile import format_profile_table, profile_by_name

    kwargs = {k: v for k, v in (("num_classes", args.num_classes), ("arc_stages", args.arc_stages),
                                ("arc_steps", args.arc_steps)) if v is not None}
    profiles = [profile_by_name(name, frames=args.frames, size=args.size, **kwargs) for name in args.models]
    if args.json:
        print(json.dumps([p.as_dict() for p in profiles], indent=2))
    else:
        print(format_profile_table(profiles))
    return 0


# -- models -----------------------------------------------------------------------------------------------

def _add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the registered models",
                       description="List every registered model name with a one-line summary.")
    p.set_defaults(handler=_run_models)


def _run_models(args: argparse.Namespace) -> int:
    from fineact.models import get_entry, list_models

    names = list_models()
    width = max(len(n) for n in names)
    for name in names:
        print(f"{name:<{width}}  {get_entry(name).summary}")
    return 0


COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [_add_models, _add_profile]


def build_parser() -> argparse.ArgumentParser:
    from fineact import __version__

    parser = argparse.ArgumentParser(prog="fineact", description="Fine-grained video action recognition.")
    parser.add_argument("--version", action="version", version=f"fineact {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except FineactError as exc:
        print(f"fineact {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
