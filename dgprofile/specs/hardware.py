"""The datasheet table: published limits of accelerators, for `predict` and as sanity bounds for probes.

The data lives in ``dgprofile/data/hardware.json``; every entry names its sources. Figures are datasheet values
(dense, no sparsity), used only where nothing was measured or to flag a probe that disagrees with the datasheet.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Literal

from dgprofile.errors import UsageError
from dgprofile.records.codec import from_json
from dgprofile.records.machine import MemoryClassKind
from dgprofile.records.values import Unavailable

DeviceType = Literal["discrete-gpu", "soc-gpu", "superchip-gpu", "apu-gpu"]

# Keys of `peak_flops_per_s`: the number formats a datasheet gives a dense peak rate for (int rates are OP/s).
PEAK_FLOPS_DTYPES: tuple[str, ...] = ("fp32", "tf32", "bf16", "fp16", "fp8", "int8", "int4", "fp4")

# Values of `native_precisions`: formats the math units compute directly, with no conversion first.
NATIVE_PRECISIONS: tuple[str, ...] = ("bf16", "fp16", "fp8", "int8", "int4", "nvfp4", "mxfp4")


@dataclass(frozen=True)
class HardwareSpec:
    """One accelerator SKU (or Apple chip + GPU-core bin) as its datasheet describes it.

    ``memory_bytes`` is the accelerator's own memory (for shared-physical parts the whole pool; for Apple chips
    the largest configuration sold, since users have smaller ones); ``notes`` says whether it is a driver reading
    or the marketed figure. ``peak_flops_per_s`` holds dense rates only, keyed by PEAK_FLOPS_DTYPES.
    ``interconnect_bytes_per_s`` is the GPU-to-GPU bandwidth one GPU has per direction (what tensor
    parallelism over several of these uses), ``Unavailable`` where the part has no such link. ``gpu_cores``
    counts what tells binned variants of one name apart: Apple GPU cores, AMD compute units, Intel Xe cores.
    ``pci_device_ids`` ("8086:e20b") identify parts whose driver reports no name (Intel's xe and i915).
    ``architecture`` is the id of an entry of the table's ``architectures`` (which formats it computes natively
    and how engines run the others). ``peer_to_peer``: whether the driver lets two of these cards reach each
    other's memory over PCIe (GeForce drivers do not). ``approximate`` maps each figure that is derived rather than published
    ("memory_bandwidth_bytes_per_s", "memory_bytes", "peak_flops_per_s" for every rate, or
    "peak_flops_per_s.<dtype>") to the log-standard deviation a prediction's band is widened by where it uses it.
    """

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
    interconnect: str | Unavailable
    interconnect_bytes_per_s: float | Unavailable
    sources: tuple[str, ...]
    notes: str
    pci_device_ids: tuple[str, ...] = ()
    architecture: str | Unavailable = Unavailable("no architecture given for this entry")
    peer_to_peer: bool = True
    approximate: dict[str, float] = field(default_factory=dict)

    def peak_flops(self, dtype: str) -> float | Unavailable:
        """The dense peak rate for ``dtype``, or Unavailable saying the datasheet gives none."""
        if dtype in self.peak_flops_per_s:
            return self.peak_flops_per_s[dtype]
        return Unavailable(f"{self.name} has no published dense {dtype} rate")

    def approximate_log_sigma(self, figure: str) -> float:
        """How uncertain a figure is (0 for a published one): ``figure`` is a field name, or
        "peak_flops_per_s.<dtype>"."""
        if figure in self.approximate:
            return self.approximate[figure]
        family = figure.split(".", 1)[0]
        return self.approximate.get(family, 0.0) if family != figure else 0.0


@dataclass(frozen=True)
class Architecture:
    """One GPU architecture: the formats its math units compute directly (``native_precisions``), how serving
    engines run the others (``runs_as``: precision -> words, e.g. FP8 on Ampere as W8A16 through Marlin), and the
    PCIe generation its cards use to reach one another without NVLink."""

    id: str
    name: str
    vendor: str
    native_precisions: tuple[str, ...]
    runs_as: dict[str, str]
    pcie_generation: int | Unavailable
    sources: tuple[str, ...]


@cache
def _table() -> dict[str, object]:
    text = resources.files("dgprofile.data").joinpath("hardware.json").read_text(encoding="utf-8")
    table: dict[str, object] = json.loads(text)
    return table


@cache
def all_specs() -> tuple[HardwareSpec, ...]:
    """Every entry of the table, in file order."""
    entries = _table()["entries"]
    assert isinstance(entries, list)
    return tuple(from_json(HardwareSpec, entry, f"hardware.json[{i}]") for i, entry in enumerate(entries))


@cache
def all_architectures() -> tuple[Architecture, ...]:
    """Every architecture of the table, in file order."""
    entries = _table()["architectures"]
    assert isinstance(entries, list)
    return tuple(from_json(Architecture, entry, f"hardware.json:architectures[{i}]")
                 for i, entry in enumerate(entries))


def architecture_of(spec: HardwareSpec) -> Architecture | Unavailable:
    """The architecture entry a datasheet entry names."""
    if isinstance(spec.architecture, Unavailable):
        return spec.architecture
    found = next((a for a in all_architectures() if a.id == spec.architecture), None)
    return found or Unavailable(f"architecture '{spec.architecture}' is not in the table")


def spec_ids() -> tuple[str, ...]:
    """The id of every entry, in file order (what `--hardware` accepts)."""
    return tuple(spec.id for spec in all_specs())


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", name.lower()).strip()


def spec_by_id(spec_id: str) -> HardwareSpec:
    """The entry with this id (case-insensitive), or the one entry whose name or a match name is exactly this
    (e.g. "NVIDIA GeForce RTX 4090"); UsageError naming close ids otherwise."""
    wanted = spec_id.strip().lower()
    for spec in all_specs():
        if spec.id == wanted:
            return spec
    normalised = _normalise(wanted)
    by_name = [s for s in all_specs() if normalised in {_normalise(n) for n in (s.name, *s.match_names)}]
    if len(by_name) == 1:
        return by_name[0]
    close = [s.id for s in (by_name or all_specs()) if normalised and normalised in _normalise(s.id + " " + s.name)]
    close = close or difflib.get_close_matches(wanted, spec_ids(), n=5, cutoff=0.6)
    hint = f"; did you mean {', '.join(close[:8])}?" if close else "; `dgprofile hardware list` shows them"
    raise UsageError(f"unknown hardware '{spec_id}'{hint}")


_NOT_GIVEN = Unavailable("not given")
_MEMORY_READING_TOLERANCE = 0.95


def match_device_name(name: str, *, memory_bytes: int | Unavailable = _NOT_GIVEN,
                      gpu_cores: int | Unavailable = _NOT_GIVEN) -> HardwareSpec | Unavailable:
    """The entry a probed device name belongs to (NVML name or Apple chip), using GPU-core count, then memory
    size, to pick between variants that share a name.

    An entry's memory is the largest configuration sold, so memory picks the smallest variant that can hold
    what was probed (an M4 Max with 64 GB is the 40-core bin; one with 36 GB the 32-core bin).
    """
    normalised = _normalise(name)
    candidates = [s for s in all_specs() if any(_normalise(m) == normalised for m in s.match_names)]
    if not candidates:
        return Unavailable(f"'{name}' is not in dgprofile's datasheet table")
    if not isinstance(gpu_cores, Unavailable):
        by_cores = [s for s in candidates if s.gpu_cores == gpu_cores]
        candidates = by_cores or candidates
    if len(candidates) > 1 and not isinstance(memory_bytes, Unavailable):
        # Drivers report a little less than the marketed size; the tolerance keeps a full card "fitting".
        fitting = [s for s in candidates if s.memory_bytes >= memory_bytes * _MEMORY_READING_TOLERANCE]
        if fitting:
            return min(fitting, key=lambda s: s.memory_bytes)
        return min(candidates, key=lambda s: abs(s.memory_bytes - memory_bytes))
    return candidates[0]


def match_pci_device(vendor_id: str, device_id: str) -> HardwareSpec | Unavailable:
    """The entry listing this PCI vendor and device id (hex, with or without 0x; e.g. "8086", "e20b")."""
    wanted = f"{_hex4(vendor_id)}:{_hex4(device_id)}"
    for spec in all_specs():
        if wanted in spec.pci_device_ids:
            return spec
    return Unavailable(f"PCI device {wanted} is not in dgprofile's datasheet table")


def _hex4(value: str) -> str:
    text = value.strip().lower()
    return text[2:] if text.startswith("0x") else text
