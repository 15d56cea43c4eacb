"""Check the decode benchmark against its targets on a real GPU, in one command.

    python scripts/verify_decode.py [--device cuda] [--full-depth] [--repeat 2] [--out DIR]

A developer script, not shipped in the package. Measures the limits, runs the decode benchmark ``--repeat``
times (the first with ``--full-depth`` if asked), writes each ``PassTimes`` as JSON under ``--out``, and prints
the pass tables followed by a summary: sampled estimate against the full-depth measurement, run-to-run
differences, the bf16 and fp8 denoise passes and AR steps at concurrency 1 against their bandwidth floors (all
bytes, and weights alone) and roofline floors.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from dgprofile.app.decode_passes import time_decode_passes
from dgprofile.model.floors import matmul_rates
from dgprofile.probes.measure_limits import measure_limits
from dgprofile.records.codec import to_json
from dgprofile.records.limits import Limits
from dgprofile.records.passes import PassMeasurement, PassTimes
from dgprofile.records.values import Unavailable
from dgprofile.specs.model_config import load_model_config
from dgprofile.specs.pass_cost import pass_cost
from dgprofile.terminal.format_passes import format_passes


def _key(m: PassMeasurement) -> tuple[str, str, int, int]:
    return (m.pass_kind, m.precision, m.concurrency, m.context_tokens)


def summary(runs: list[PassTimes], limits: Limits) -> list[str]:
    """The target checks as lines of text."""
    lines = ["", "Summary"]
    first = runs[0]
    for m in first.passes:
        if not isinstance(m.full_depth_seconds, Unavailable):
            lines.append(f"  full depth {m.pass_kind:10s} {m.precision} c={m.concurrency}: sampled {m.seconds * 1e3:.2f} ms"
                         f" vs full {m.full_depth_seconds * 1e3:.2f} ms ({m.seconds / m.full_depth_seconds - 1:+.1%})")
    for index, other in enumerate(runs[1:], start=2):
        by_key = {_key(m): m for m in other.passes if m.measured}
        diffs = [(abs(by_key[_key(m)].seconds / m.seconds - 1), _key(m)) for m in first.passes
                 if m.measured and _key(m) in by_key]
        if diffs:
            worst = max(diffs)
            within = sum(d <= 0.03 for d, _ in diffs)
            lines.append(f"  repeat run {index}: {within}/{len(diffs)} passes within 3%; worst {worst[0]:.1%} at "
                         f"{worst[1]}")
    bandwidth = limits.stream_read_bytes_per_s
    for m in first.passes:
        if (m.measured and m.precision in ("bf16", "fp8") and m.concurrency == 1
                and m.pass_kind in ("dg-denoise", "ar-step")):
            text = f"  {m.pass_kind} {m.precision} c=1: {m.seconds * 1e3:.2f} ms"
            if not isinstance(bandwidth, Unavailable):
                weights = pass_cost(load_model_config(), kind=m.pass_kind, precision=m.precision, concurrency=1,
                                    context_tokens=m.context_tokens).weight_bytes / bandwidth
                floor = m.bytes_moved / bandwidth
                text += (f"; floors at the streaming read: all bytes {floor * 1e3:.2f} ms "
                         f"({m.seconds / floor - 1:+.1%} over), weights alone {weights * 1e3:.2f} ms "
                         f"({m.seconds / weights - 1:+.1%} over)")
            if not isinstance(m.roofline_floor_seconds, Unavailable):
                text += (f"; roofline {m.roofline_floor_seconds * 1e3:.2f} ms "
                         f"({m.seconds / m.roofline_floor_seconds - 1:+.1%} over)")
            lines.append(text)
    lines.append(f"  decode wall time per run: {', '.join(f'{r.seconds_taken:.1f} s' for r in runs)}")
    return lines


def sdpa_backends(device: str) -> list[str]:
    """Which fused SDPA backends accept the global-layer shape (head dim 512, 8 query heads folded per KV head),
    with and without a boolean mask: the math backend is what remains otherwise."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q = torch.randn(1, 2, 8 * 256, 512, device=device, dtype=torch.bfloat16)
    k = torch.randn(1, 2, 4352, 512, device=device, dtype=torch.bfloat16)
    mask = torch.ones(8 * 256, 4352, device=device, dtype=torch.bool)
    lines = []
    for backend in (SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.CUDNN_ATTENTION):
        for name, attn_mask in (("no mask", None), ("bool mask", mask)):
            try:
                with sdpa_kernel(backend):
                    torch.nn.functional.scaled_dot_product_attention(q, k, k, attn_mask=attn_mask, scale=1.0)
                lines.append(f"  sdpa {backend.name} {name}: ok")
            except RuntimeError as error:
                lines.append(f"  sdpa {backend.name} {name}: no ({str(error).splitlines()[0][:80]})")
    return lines


def kernel_profiles(device: str, limits: Limits, precisions: tuple[str, ...], trace_dir: Path | None) -> list[str]:
    """Per-kernel tables of one sliding layer, one global layer and the head of the AR step and the denoise pass
    at concurrency 1 and 8, per precision, each component against its floor at this machine's limits (quantised
    components' matmuls at the precision's rate, every other FLOP at the 16-bit rate: ``matmul_rates``)."""
    from dgprofile.probes.decode.kernel_profile import format_kernel_profile, profile_kernels, summary_lines

    bandwidth = measured_value(limits.stream_read_bytes_per_s, "the streaming read")
    lines: list[str] = []
    summaries: list[str] = []
    for precision in precisions:
        rates = matmul_rates(limits, precision)
        if isinstance(rates, Unavailable):
            raise SystemExit(f"no {precision} floors: {rates.reason}")
        flops, wide_flops = rates
        for kind in ("ar-step", "dg-denoise"):
            for concurrency in (1, 8):
                profile = profile_kernels(device=device, kind=kind, precision=precision, concurrency=concurrency,
                                          context_tokens=4096, bytes_per_s=bandwidth, flops_per_s=flops,
                                          wide_flops_per_s=wide_flops, trace_dir=trace_dir)
                lines += ["", *format_kernel_profile(profile)]
                summaries += summary_lines(profile)
    return [*lines, "", "Kernel summary", *(f"  {line}" for line in summaries)]


def measured_value(value: float | Unavailable, what: str) -> float:
    """A limit the profile needs; exits naming it (and why) when it was not measured."""
    if isinstance(value, Unavailable):
        raise SystemExit(f"{what} was not measured: {value.reason}")
    return value


def sustained_load_check(device: str, seconds: float = 1.5) -> str:
    """Whether a long compute-bound run (a full-depth prefill lasts ~0.1 s a replay) runs slower than the short
    sampled measurement: the 2-sliding-layer prefill part timed as the benchmark does, then again after
    ``seconds`` of back-to-back replays, with the SM clock read (torch.cuda.clock_rate, MHz) after each."""
    import torch

    from dgprofile.probes.decode.bench import GPU_BUDGET, sustain_load
    from dgprofile.probes.decode.model import build_layer, layer_stack, layer_state, random_tensor
    from dgprofile.probes.harness import graph_or_eager, timer_for

    config = load_model_config()
    layers = [build_layer(config, "sliding", dtype=torch.bfloat16, fp8=False, device=device) for _ in range(2)]
    states = [layer_state(config, "sliding", kind="prefill", concurrency=1, new=4096, context=0,
                          dtype=torch.bfloat16, device=device, generator=torch.Generator().manual_seed(0),
                          expert_method="grouped", fused=True) for _ in layers]
    x = random_tensor((4096, config.backbone.hidden_size), torch.bfloat16, device, std=1.0)
    prepared = graph_or_eager(layer_stack(config, layers, states, x, 1))
    timer = timer_for(device)
    short = GPU_BUDGET.measure(prepared.call, timer=timer).median_seconds
    clock_short = torch.cuda.clock_rate()
    sustain_load(prepared.call, seconds, device)
    clock_loaded = torch.cuda.clock_rate()
    loaded = GPU_BUDGET.measure(prepared.call, timer=timer).median_seconds
    return (f"  prefill 2 sliding layers: short measurement {short * 1e3:.2f} ms (SM clock {clock_short} MHz), "
            f"after {seconds:.1f} s of load {loaded * 1e3:.2f} ms (SM clock {clock_loaded} MHz, "
            f"{loaded / short - 1:+.1%})")


def main() -> None:
    """Parse the command line, measure, print, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--full-depth", action="store_true")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--profile", action="store_true",
                        help="also print per-kernel tables (AR step and denoise, c=1 and 8) against their floors")
    parser.add_argument("--profile-only", action="store_true", help="the limits and the per-kernel tables alone")
    parser.add_argument("--precisions", default="bf16,fp8", help="precisions to profile")
    args = parser.parse_args()
    started = time.perf_counter()
    import torch

    print(f"torch {torch.__version__}", flush=True)
    if args.device.startswith("cuda"):
        print(torch.cuda.get_device_name(), *sdpa_backends(args.device), sep="\n", flush=True)
    limits = measure_limits(args.device, quick=args.quick)
    print(f"limits: streaming read {limits.stream_read_bytes_per_s}, peaks {limits.peak_flops_per_s} "
          f"({limits.seconds_taken:.1f} s)", flush=True)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    runs = []
    for index in range(0 if args.profile_only else args.repeat):
        result = time_decode_passes(device=args.device, limits=limits, quick=args.quick,
                                    full_depth=args.full_depth and index == 0,
                                    progress=lambda message: print(message, flush=True))
        runs.append(result)
        if args.out:
            (args.out / f"passes-{index + 1}.json").write_text(json.dumps(to_json(result), indent=1))
        print(format_passes(result), flush=True)
    if args.out:
        (args.out / "limits.json").write_text(json.dumps(to_json(limits), indent=1))
    if runs:
        print("\n".join(summary(runs, limits)))
    if args.full_depth and args.device.startswith("cuda"):
        print(sustained_load_check(args.device), flush=True)
    if args.profile or args.profile_only:
        print("\n".join(kernel_profiles(args.device, limits, tuple(args.precisions.split(",")),
                                         args.out / "traces" if args.out else None)), flush=True)
    print(f"total {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
