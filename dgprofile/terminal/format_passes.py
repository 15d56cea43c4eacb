"""Measured decode passes as terminal text: one table per precision, then how they were measured and reduced."""

from __future__ import annotations

from dgprofile.records.passes import PassMeasurement, PassTimes
from dgprofile.records.values import Unavailable
from dgprofile.text.units import (
    bandwidth_text,
    bytes_text,
    count_text,
    flop_count_text,
    percent_text,
    seconds_text,
    signed_percent_text,
    text_table,
)

PASS_ORDER = ("ar-step", "dg-denoise", "dg-commit", "prefill")
PASS_LABELS = {"ar-step": "AR step", "dg-denoise": "DG denoise", "dg-commit": "DG commit", "prefill": "prefill"}



def _share(value: float | Unavailable) -> str:
    return "-" if isinstance(value, Unavailable) else percent_text(value)


def _tokens(m: PassMeasurement) -> str:
    return f"{m.concurrency}x{m.tokens_per_request}"


def _row(m: PassMeasurement) -> tuple[str, ...]:
    full = "" if isinstance(m.full_depth_seconds, Unavailable) else (
        f"{seconds_text(m.full_depth_seconds)} ({signed_percent_text(m.seconds / m.full_depth_seconds - 1)})")
    return (PASS_LABELS[m.pass_kind], _tokens(m), str(m.context_tokens), seconds_text(m.seconds),
            f"±{percent_text(m.relative_spread)}" if m.measured else "modelled", bytes_text(m.bytes_moved),
            flop_count_text(m.flops), bandwidth_text(m.achieved_bytes_per_s), _share(m.fraction_of_bandwidth_floor),
            _share(m.fraction_of_compute_floor), _share(m.fraction_of_roofline_floor),
            count_text(m.experts_touched_per_layer), full)


# "of bw floor": bandwidth floor / time (100% = all bytes moved at the measured streaming-read rate); likewise
# "of compute floor" with the measured matmul rates (the compute format's for the quantised components' matmuls,
# the 16-bit one for every other FLOP); "of roofline": each
# component at the larger of its two floors, one after another.
HEADER = ("pass", "c x tokens", "context", "time", "spread", "bytes", "FLOPs", "achieved", "of bw floor",
          "of compute floor", "of roofline", "experts/layer", "full depth (estimate vs it)")


def format_passes(passes: PassTimes | Unavailable) -> str:
    """The decode passes as tables (one per precision, measured first), then methods and reductions."""
    if isinstance(passes, Unavailable):
        return f"Decode passes: not measured ({passes.reason})"
    lines = [f"Decode passes ({passes.model_id} on {passes.device}, {seconds_text(passes.seconds_taken)})"]
    precisions = list(dict.fromkeys(m.precision for m in sorted(passes.passes, key=lambda m: not m.measured)))
    for precision in precisions:
        chosen = sorted((m for m in passes.passes if m.precision == precision),
                        key=lambda m: (PASS_ORDER.index(m.pass_kind), m.context_tokens, m.concurrency))
        measured = "measured" if chosen[0].measured else "modelled from the bf16 passes"
        lines += ["", f"{precision} ({measured})", *text_table([HEADER, *(_row(m) for m in chosen)])]
    if passes.passes:
        first = next((m for m in passes.passes if m.measured), passes.passes[0])
        lines += ["", f"Basis: {first.basis}"]
    lines += [f"  {method}" for method in passes.methods]
    if passes.reductions:
        lines += ["Reduced to fit this machine:", *(f"  - {r}" for r in passes.reductions)]
    return "\n".join(lines)
