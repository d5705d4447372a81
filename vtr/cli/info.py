"""`vtr info`: versions, threads and device."""
from __future__ import annotations

import argparse
import json
import platform


def environment_info() -> dict:
    """Versions and compute resources this process sees (what the book's first chapter prints)."""
    import numpy
    import torch
    import transformers

    import vtr

    if torch.cuda.is_available():
        device = torch.cuda.get_device_name(0)
    else:
        device = "cpu"
    return {
        "vtr": vtr.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "numpy": numpy.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "device": device,
        "platform": platform.platform(),
    }


def _info(args: argparse.Namespace) -> int:
    info = environment_info()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        width = max(map(len, info))
        for key, value in info.items():
            print(f"{key:<{width}}  {value}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("info", help="print versions, threads and device",
                              description="Print the versions, torch threads and device vtr runs with.")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_info)
