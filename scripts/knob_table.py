"""Print the README's tables of what each setup knob changes on a few reference machines (datasheet predictions).

    python scripts/knob_table.py
"""

from __future__ import annotations

from typing import Any

from dgprofile.app.predictor import PredictOptions, predict_for_spec
from dgprofile.errors import UsageError
from dgprofile.specs.hardware import spec_by_id

MACHINES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("H100 SXM, vLLM", "h100-sxm", {}), ("RTX 4090, vLLM", "rtx-4090", {}),
    ("DGX Spark (GB10), vLLM", "dgx-spark", {}), ("M5 Max 40-core, MLX", "m5-max-40gpu", {}))
KNOBS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("defaults", {}), ("--execution-mode eager", {"execution_mode": "eager"}),
    ("--sampler confidence-threshold", {"sampler": "confidence-threshold"}),
    ("--sampler-value 0.2 (entropy bound)", {"sampler_value": 0.2}), ("--thinking", {"thinking": True}),
    ("--logits quantised", {"quantised_logits": True}), ("--ar-baseline mtp", {"ar_baseline": "mtp"}),
    ("--precision fp8", {"precision": "fp8"}), ("--precision nvfp4", {"precision": "nvfp4"}))
LINKS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("2x H100 SXM (NVLink 4, datasheet)", "h100-sxm", {"gpus": 2}),
    ("2x H100 SXM, --interconnect pcie5x16", "h100-sxm", {"gpus": 2, "interconnect": "pcie5x16"}),
    ("2x RTX 3090 (PCIe 4.0 x16, no peer-to-peer: datasheet)", "rtx-3090", {"gpus": 2}),
    ("2x RTX 3090, --interconnect pcie4x16 (peer-to-peer)", "rtx-3090", {"gpus": 2, "interconnect": "pcie4x16"}),
    ("2x RTX 3090, --execution-mode eager", "rtx-3090", {"gpus": 2, "execution_mode": "eager"}))


def cell(hardware: str, options: dict[str, Any], *, precision: bool = False) -> str:
    """The headline speedup, its band and verdict (and the precision chosen), or why the knob does not apply."""
    try:
        predictions = predict_for_spec(spec_by_id(hardware), options=PredictOptions(**options))
    except UsageError as exc:
        return f"n/a ({str(exc).split(':')[0]})"
    h = predictions.headline
    if not isinstance(h.speedup, float) or not isinstance(h.speedup_low, float) \
            or not isinstance(h.speedup_high, float):
        return str(predictions.verdict)
    shown = f", {h.scenario.precision}" if precision else ""
    return f"{h.speedup:.1f}x ({h.speedup_low:.1f}-{h.speedup_high:.1f}) {predictions.verdict}{shown}"


def main() -> None:
    print("| knob | " + " | ".join(name for name, _, _ in MACHINES) + " |")
    print("|---" * (len(MACHINES) + 1) + "|")
    for label, knob in KNOBS:
        cells = [cell(hardware, {**base, **knob}, precision=label == "defaults") for _, hardware, base in MACHINES]
        print(f"| `{label}` | " + " | ".join(cells) + " |")
    print()
    print("| tensor parallel | headline speedup (band) verdict |")
    print("|---|---|")
    for label, hardware, options in LINKS:
        print(f"| {label} | {cell(hardware, options, precision=True)} |")


if __name__ == "__main__":
    main()
