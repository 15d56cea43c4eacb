"""The datasheet table: published limits of accelerators, for `predict` and as sanity bounds for probes.

The data lives in ``dgprofile/data/hardware.json``; every entry names its sources. Figures are datasheet values
(dense, no sparsity), used only where nothing was measured or to flag a probe that disagrees with the datasheet.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

from dgprofile.codec import from_json
from dgprofile.errors import UsageError
from dgprofile.machine import MemoryClassKind
from dgprofile.values import Unavailable

DeviceType = Literal["discrete-gpu", "soc-gpu", "superchip-gpu", "apu-gpu"]


@dataclass(frozen=True)
class HardwareSpec:
    """One accelerator SKU (or Apple chip + GPU-core bin) as its datasheet describes it."""

    id: str
    name: str
    vendor: str
    device_type: DeviceType
    memory_class: MemoryClassKind
    memory_bytes: int
    memory_bandwidth_bytes_per_s: float
    peak_flops_per_s: dict[str, float]
    native_precisions: tuple[str, ...]
    match_names: tuple[str, ...]
    gpu_cores: int | Unavailable
    sources: tuple[str, ...]
    notes: str


@cache
def all_specs() -> tuple[HardwareSpec, ...]:
    """Every entry of the table, in file order."""
    text = resources.files("dgprofile.data").joinpath("hardware.json").read_text(encoding="utf-8")
    return tuple(from_json(HardwareSpec, entry, f"hardware.json[{i}]")
                 for i, entry in enumerate(json.loads(text)["entries"]))


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", name.lower()).strip()


def spec_by_id(spec_id: str) -> HardwareSpec:
    """The entry with this id (case-insensitive); UsageError naming close ids otherwise."""
    wanted = spec_id.strip().lower()
    for spec in all_specs():
        if spec.id == wanted:
            return spec
    close = [s.id for s in all_specs() if _normalise(wanted) in _normalise(s.id + " " + s.name)]
    hint = f"; did you mean {', '.join(close[:6])}?" if close else "; `dgprofile hardware list` shows them"
    raise UsageError(f"unknown hardware '{spec_id}'{hint}")


def match_device_name(name: str, *, memory_bytes: int | Unavailable = Unavailable("not given"),
                      gpu_cores: int | Unavailable = Unavailable("not given")) -> HardwareSpec | Unavailable:
    """The entry a probed device name belongs to (NVML name or Apple chip), using memory size and
    GPU-core count to pick between variants that share a name."""
    normalised = _normalise(name)
    candidates = [s for s in all_specs() if any(_normalise(m) == normalised for m in s.match_names)]
    if not candidates:
        return Unavailable(f"'{name}' is not in dgprofile's datasheet table")
    if not isinstance(gpu_cores, Unavailable):
        by_cores = [s for s in candidates if s.gpu_cores == gpu_cores]
        candidates = by_cores or candidates
    if len(candidates) > 1 and not isinstance(memory_bytes, Unavailable):
        candidates.sort(key=lambda s: abs(s.memory_bytes - memory_bytes))
    return candidates[0]
