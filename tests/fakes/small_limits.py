"""Limits measured with tiny sizes, so CLI tests that really measure this CPU finish in seconds."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from dgprofile.probes import bench_bandwidth
from dgprofile.probes import measure_limits as limits_module
from dgprofile.probes.bench_matmul import MatmulPlan, MatmulShape
from dgprofile.probes.harness import Budget
from dgprofile.probes.measure_limits import LimitsPlan
from dgprofile.records.machine import CpuInfo

MIB = 1 << 20


def tiny_plan(device: str, *, quick: bool) -> LimitsPlan:
    return LimitsPlan(
        bandwidth=Budget(0.002, 3, 0.2), host_transfer=Budget(), host_transfer_bytes=MIB,
        latency=Budget(0.002, 3, 0.2),
        matmul=MatmulPlan(square=64, tokens=(1, 8), shapes=(MatmulShape("dense-mlp", 64, 48, "test"),),
                          square_budget=Budget(0.001, 3, 0.2), decode_budget=Budget(0.001, 3, 0.2)),
        matmul_dtypes=("fp32", "bf16"))


def use_small_limits(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *, bf16_arithmetic: bool = True) -> None:
    """Tiny limits plan and buffers; device locks in a private temp directory, away from real runs. The CPU counts
    as having bf16 arithmetic (or not, with ``bf16_arithmetic``) whatever this machine's CPU has, so the same
    figures are measured on every test machine."""
    monkeypatch.setattr(CpuInfo, "computes_bf16_natively", property(lambda self: bf16_arithmetic))
    monkeypatch.setattr(limits_module, "plan_for", tiny_plan)
    monkeypatch.setattr(bench_bandwidth, "MIN_CPU_BUFFER_BYTES", 2 * MIB)
    monkeypatch.setattr(bench_bandwidth, "LLC_MULTIPLE", 0)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
