"""Check, on small shapes, that the fast paths this torch offers compute the right thing on this device.

Each check returns "" when the path works, else a one-line reason; the benchmark then leaves that expert method
out, or models the precision instead of measuring it (FP8), and says why.
"""

from __future__ import annotations

import torch

from .model import ExpertMethod, Experts, Linear, Routing, run_experts, uniform_routing

# Relative error allowed against a float32 reference computed from the same (dequantised) weights.
BF16_TOLERANCE = 2e-2
FP8_TOLERANCE = 8e-2  # includes the per-token activation quantisation


def _relative_error(value: torch.Tensor, reference: torch.Tensor) -> float:
    return float((value.float() - reference).norm() / reference.norm())


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}".splitlines()[0][:200]


def check_experts(device: str, dtype: torch.dtype, *, fp8: bool, method: ExpertMethod) -> str:
    """One expert method against per-assignment matmuls in float32, with idle experts and with busy ones."""
    try:
        torch.manual_seed(0)
        experts = Experts(8, 256, 128, dtype=dtype, fp8=fp8, device=device)
        worst = 0.0
        for tokens in (3, 40):
            routing = uniform_routing(tokens, 8, 2, device, torch.Generator().manual_seed(tokens))
            x = torch.randn(tokens, 256, device=device, dtype=dtype)
            out = run_experts(method, experts, x, routing)
            worst = max(worst, _relative_error(out, _reference(experts, x, routing)))
    except Exception as exc:  # any failure of an optional fast path is a reason to fall back, not to crash
        return _describe(exc)
    limit = FP8_TOLERANCE if fp8 else BF16_TOLERANCE
    return "" if worst <= limit else f"{method} experts off by {worst:.1%} (limit {limit:.0%})"


def _reference(experts: Experts, x: torch.Tensor, routing: Routing) -> torch.Tensor:
    rows = []
    for token, expert_ids in enumerate(routing.expert_ids.tolist()):
        for expert in expert_ids:
            gate_up = experts.gate_up[expert].float()
            down = experts.down[expert].float()
            if experts.fp8:
                gate_up = gate_up * experts.gate_up_scale[expert].view(-1, 1)
                down = down * experts.down_scale[expert].view(-1, 1)
            gate, up = (gate_up @ x[token].float()).chunk(2)
            rows.append(down @ (torch.nn.functional.gelu(gate, approximate="tanh") * up))
    return torch.stack(rows)


def check_fp8_linear(device: str) -> str:
    """``torch._scaled_mm`` with per-token and per-channel scales, at M = 1 and M = 37 (unaligned)."""
    try:
        torch.manual_seed(0)
        linear = Linear(512, 256, dtype=torch.bfloat16, fp8=True, device=device)
        weight = linear.weight.float() * linear.scale.view(-1, 1)
        worst = 0.0
        for rows in (1, 37):
            x = torch.randn(rows, 256, device=device, dtype=torch.bfloat16)
            worst = max(worst, _relative_error(linear(x), x.float() @ weight.t()))
    except Exception as exc:  # see check_grouped
        return _describe(exc)
    return "" if worst <= FP8_TOLERANCE else f"scaled matmul off by {worst:.1%}"
