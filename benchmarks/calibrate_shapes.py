"""Calibrate at real MoE layer shapes and print achieved vs peak: Mixtral 8x7B, Qwen3-30B-A3B, DeepSeek-V3.

    python benchmarks/calibrate_shapes.py                 # on the GPU (CUDA or Metal)
    python benchmarks/calibrate_shapes.py --device cpu    # CPU: only the shapes whose weights fit in RAM

Targets on an H100 (issue "Calibration"): at 4,096 tokens the layer reaches at least half of the bf16 dense
peak, and at decode-sized batches at least 60% of the memory bandwidth.  Each shape's weights are built on
the device (Mixtral 8x7B: 1.4 GB bf16 per layer; Qwen3-30B-A3B: 1.2 GB; DeepSeek-V3: 11.3 GB).
"""

from __future__ import annotations

import argparse

from rich.console import Console

from moeplan.calibration.run import run_calibration, shape_from_model
from moeplan.output.rich_tables import print_calibration

MODELS = ("mixtral-8x7b", "qwen3-30b-a3b", "deepseek-v3")
TOKENS = (1, 8, 64, 512, 4096)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--max-weights-gib", type=float, default=16.0, help="skip layers bigger than this")
    args = parser.parse_args()
    console = Console()
    for model in MODELS:
        shape = shape_from_model(model)
        elem = 4 if (args.dtype or ("fp32" if args.device == "cpu" else "bf16")) == "fp32" else 2
        gib = shape.weight_elements() * elem / 2**30
        if gib > args.max_weights_gib:
            console.print(f"[yellow]{model}: {gib:.1f} GiB of layer weights exceeds --max-weights-gib; skipped[/]")
            continue
        console.rule(model)
        run = run_calibration(shape, TOKENS, args.device, args.dtype)
        print_calibration(console, run, "(not saved)")


if __name__ == "__main__":
    main()
