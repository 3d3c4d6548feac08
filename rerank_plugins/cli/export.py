"""``rerank-plugins export``: write a model as an ONNX or OpenVINO artefact that scores without torch."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rerank_plugins.cli.commands import COMMANDS

__all__ = ["add_parser", "run"]


def add_parser(commands: Any, name: str) -> None:
    parser = commands.add_parser(
        name,
        help=COMMANDS[name].help,
        description="Export a cross-encoder (hub id or local PyTorch checkpoint) to a folder holding the graph, the "
        "tokenizer, config.json and a manifest (rerank-export.json) with the source weights' digest and how closely "
        "the artefact's scores follow the source's. Load the folder as the model, with only the light install: "
        'pip install "rerank-plugins[onnx]" (or [openvino]). Exporting needs torch: '
        'pip install "rerank-plugins[export]".',
    )
    parser.add_argument("model", help="the cross-encoder to export: a Hugging Face id or a local directory")
    parser.add_argument("--out", required=True, help="folder for the artefact (new, empty, or an earlier artefact)")
    parser.add_argument("--runtime", choices=["onnx", "openvino"], default="onnx", help="the runtime it will run on")
    parser.add_argument(
        "--precision",
        choices=["fp32", "int8"],
        default="fp32",
        help="fp32 scores as the source does; int8 weights are smaller and faster on the CPU",
    )
    parser.add_argument("--revision", default=None, help="the hub revision (branch, tag or commit) to export")
    parser.add_argument("--calibration", default=None, help="a calibration of the source model to ship with it")
    parser.add_argument("--trust-remote-code", action="store_true", help="run the model repository's own code")


def run(args: argparse.Namespace) -> int:
    from rerank_plugins.export import export_model

    manifest = export_model(
        args.model,
        args.out,
        runtime=args.runtime,
        precision=args.precision,
        revision=args.revision,
        trust_remote_code=args.trust_remote_code,
        calibration=args.calibration,
    )
    checks = manifest.checks
    print(f"exported {args.model} to {args.out} ({manifest.runtime}, {manifest.precision})")
    print(json.dumps({"checks": checks}, indent=2))
    sys.stdout.flush()
    return 0
