"""What the probes found on a machine: devices, memory, software. Pure data; probes fill it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dgprofile.records.values import Unavailable

MemoryClassKind = Literal["discrete", "shared-physical", "coherent-split"]


@dataclass(frozen=True)
class MemoryClass:
    """How an accelerator's memory relates to the host's, and how much of it the accelerator can really use."""

    kind: MemoryClassKind
    signals: tuple[str, ...]
    usable_bytes: int | Unavailable
    usable_basis: str


@dataclass(frozen=True)
class GpuProcess:
    """Another process holding memory on a GPU (it can spoil measurements)."""

    pid: int
    name: str | Unavailable
    used_memory_bytes: int | Unavailable


@dataclass(frozen=True)
class NvLink:
    """The NVLink links NVML reports active on a GPU: count, NVLink version and the per-direction bandwidth they
    give together (25 GB/s a link for NVLink 2-4, 50 GB/s for NVLink 5)."""

    active_links: int
    version: int | Unavailable
    bytes_per_s: float | Unavailable


# The path between two GPUs, fastest first: NVLink through NVSwitches, NVLink between the two directly, else the
# PCIe path NVML's closest common ancestor names (one board, one PCIe switch, several switches, the CPU's host
# bridge, host bridges of one NUMA node, or across NUMA nodes: each slower than the one before).
LinkPath = Literal["nvswitch", "nvlink", "same-board", "pcie-switch", "pcie-switches", "host-bridge", "numa-node",
                   "across-numa"]
LINK_PATH_WORDS: dict[LinkPath, str] = {
    "nvswitch": "NVLink through NVSwitch", "nvlink": "NVLink, GPU to GPU", "same-board": "one board",
    "pcie-switch": "PCIe, one switch", "pcie-switches": "PCIe, several switches",
    "host-bridge": "PCIe through the CPU's host bridge", "numa-node": "PCIe across host bridges of one NUMA node",
    "across-numa": "PCIe across NUMA nodes (the CPUs' interconnect)"}
NOT_PROBED_PATH = Unavailable("not probed: the result was written before dgprofile told NVLink paths apart")


@dataclass(frozen=True)
class PeerLink:
    """How a GPU reaches another one: NVML's topology level of their closest common ancestor ("same board",
    "single PCIe switch", "host bridge", "same NUMA node", "across NUMA nodes") and its code
    (``nvmlGpuTopologyLevel_t``), whether peer-to-peer over NVLink works between them, whether the driver allows
    peer-to-peer reads, the NVLink links that join them (through NVSwitches, all of the less-linked GPU's) and the
    path this makes (``LinkPath``)."""

    peer_index: int
    topology: str | Unavailable
    nvlink: bool
    peer_to_peer: bool | Unavailable
    common_ancestor_level: int | Unavailable = NOT_PROBED_PATH
    nvlink_links: int | Unavailable = NOT_PROBED_PATH
    path: LinkPath | Unavailable = NOT_PROBED_PATH


NOT_PROBED_LINKS = Unavailable("not probed: the result was written before dgprofile read NVLink topology")


@dataclass(frozen=True)
class NvidiaGpu:
    """One NVIDIA GPU as NVML describes it (the probe never initialises CUDA).

    ``theoretical_bandwidth_bytes_per_s`` is the figure the rest of the tool uses until a measurement replaces
    it: the NVML-derived figure (2 x max memory clock x bus width / 8), unless it disagrees with the datasheet
    entry by more than 15%, in which case the datasheet figure is used and ``theoretical_bandwidth_basis`` and
    ``warnings`` say so. ``pcie_generation``/``pcie_width`` are the link's maximum (an idle link trains down).
    ``nvlink`` and ``peer_links`` are NVML's topology: what tensor parallelism over several of these GPUs would
    all-reduce over.
    """

    kind: Literal["nvidia-gpu"]
    index: int
    name: str
    uuid: str | Unavailable
    pci_bus_id: str | Unavailable
    architecture: str | Unavailable
    compute_capability: str | Unavailable
    driver_version: str | Unavailable
    cuda_driver_version: str | Unavailable
    nvml_version: str | Unavailable
    memory_total_bytes: int | Unavailable
    memory_free_bytes: int | Unavailable
    memory_used_bytes: int | Unavailable
    memory_bus_width_bits: int | Unavailable
    memory_clock_max_hz: float | Unavailable
    nvml_derived_bandwidth_bytes_per_s: float | Unavailable
    datasheet_bandwidth_bytes_per_s: float | Unavailable
    bandwidth_disagrees_with_datasheet: bool
    theoretical_bandwidth_bytes_per_s: float | Unavailable
    theoretical_bandwidth_basis: str
    sm_count: int | Unavailable
    sm_count_basis: str
    sm_clock_max_hz: float | Unavailable
    power_limit_w: float | Unavailable
    pcie_generation: int | Unavailable
    pcie_width: int | Unavailable
    mig_mode: str | Unavailable
    ecc_mode: str | Unavailable
    utilization_percent: int | Unavailable
    other_processes: tuple[GpuProcess, ...] | Unavailable
    memory_class: MemoryClass
    spec_id: str | Unavailable
    warnings: tuple[str, ...]
    nvlink: NvLink | Unavailable = NOT_PROBED_LINKS
    peer_links: tuple[PeerLink, ...] | Unavailable = NOT_PROBED_LINKS


@dataclass(frozen=True)
class AppleGpu:
    """The GPU of an Apple Silicon chip (written against documented interfaces; unverified on hardware)."""

    kind: Literal["apple-gpu"]
    index: int
    name: str
    chip: str
    gpu_cores: int | Unavailable
    unified_memory_bytes: int | Unavailable
    recommended_working_set_bytes: int | Unavailable
    theoretical_bandwidth_bytes_per_s: float | Unavailable
    theoretical_bandwidth_basis: str
    macos_version: str | Unavailable
    memory_class: MemoryClass
    spec_id: str | Unavailable
    verified_on_hardware: bool
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class AmdGpu:
    """One AMD GPU or APU as amdsmi (AMD's management library) describes it; the probe starts no HIP context.

    ``architecture`` is the family (CDNA 3, RDNA 3.5, ...) and ``gfx_target`` the LLVM processor (gfx942) that
    ROCm builds for. ``memory_total_bytes`` is the driver's VRAM: on APUs the BIOS carve-out, beside the GTT
    (system memory the GPU maps, ``gtt_total_bytes``); ``memory_class.usable_bytes`` says what the GPU can really
    use. ``library_bandwidth_bytes_per_s`` is amdsmi's own peak VRAM bandwidth where the driver reports one;
    ``theoretical_bandwidth_bytes_per_s`` follows the same datasheet cross-check as ``NvidiaGpu``. Written
    against amdsmi's documented interface and tested with fakes: ``verified_on_hardware`` stays false until a
    run on real hardware confirms it.
    """

    kind: Literal["amd-gpu"]
    index: int
    name: str
    uuid: str | Unavailable
    pci_bus_id: str | Unavailable
    pci_device_id: str | Unavailable
    architecture: str | Unavailable
    gfx_target: str | Unavailable
    driver_version: str | Unavailable
    amdsmi_version: str | Unavailable
    rocm_version: str | Unavailable
    memory_type: str | Unavailable
    memory_total_bytes: int | Unavailable
    memory_free_bytes: int | Unavailable
    memory_used_bytes: int | Unavailable
    gtt_total_bytes: int | Unavailable
    gtt_used_bytes: int | Unavailable
    memory_bus_width_bits: int | Unavailable
    memory_clock_max_hz: float | Unavailable
    library_bandwidth_bytes_per_s: float | Unavailable
    datasheet_bandwidth_bytes_per_s: float | Unavailable
    bandwidth_disagrees_with_datasheet: bool
    theoretical_bandwidth_bytes_per_s: float | Unavailable
    theoretical_bandwidth_basis: str
    compute_units: int | Unavailable
    gfx_clock_max_hz: float | Unavailable
    power_limit_w: float | Unavailable
    pcie_generation: int | Unavailable
    pcie_width: int | Unavailable
    compute_partition: str | Unavailable
    memory_partition: str | Unavailable
    utilization_percent: int | Unavailable
    other_processes: tuple[GpuProcess, ...] | Unavailable
    memory_class: MemoryClass
    spec_id: str | Unavailable
    verified_on_hardware: bool
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class IntelGpu:
    """One Intel GPU (Arc card or integrated graphics) as the xe or i915 kernel driver describes it in sysfs.

    The driver exposes no marketing name, memory clock or bus width: ``name``, ``xe_cores`` and the theoretical
    bandwidth come from the datasheet entry of the PCI device id, and an integrated GPU shares the host's DRAM
    (its bandwidth is the CPU's). ``architecture`` is the Xe generation. Written against the kernel's documented
    sysfs and DRM fdinfo files and tested with fakes: ``verified_on_hardware`` stays false until a run on real
    hardware confirms it.
    """

    kind: Literal["intel-gpu"]
    index: int
    name: str
    pci_bus_id: str | Unavailable
    pci_device_id: str
    architecture: str | Unavailable
    driver: str
    memory_total_bytes: int | Unavailable
    theoretical_bandwidth_bytes_per_s: float | Unavailable
    theoretical_bandwidth_basis: str
    xe_cores: int | Unavailable
    gt_clock_max_hz: float | Unavailable
    power_limit_w: float | Unavailable
    utilization_percent: int | Unavailable
    other_processes: tuple[GpuProcess, ...] | Unavailable
    memory_class: MemoryClass
    spec_id: str | Unavailable
    verified_on_hardware: bool
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class FailedDevice:
    """A device that was seen but could not be described (lost mid-query, driver error)."""

    kind: Literal["failed-device"]
    index: int
    vendor: str
    reason: str


Accelerator = NvidiaGpu | AmdGpu | IntelGpu | AppleGpu | FailedDevice
# Every accelerator that was described (not failed): what measurements and predictions can use.
DescribedAccelerator = NvidiaGpu | AmdGpu | IntelGpu | AppleGpu


# py-cpuinfo's names of the CPU features that compute bf16 natively.
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")


@dataclass(frozen=True)
class CpuInfo:
    """The host CPU and its memory."""

    model: str | Unavailable
    architecture: str
    physical_cores: int | Unavailable
    logical_cores: int | Unavailable
    inference_flags: tuple[str, ...]
    l3_cache_bytes: int | Unavailable
    ram_total_bytes: int | Unavailable
    ram_available_bytes: int | Unavailable
    theoretical_bandwidth_bytes_per_s: float | Unavailable
    theoretical_bandwidth_basis: str
    numa_nodes: int | Unavailable

    @property
    def computes_bf16_natively(self) -> bool:
        """Whether the CPU has bf16 arithmetic (x86 AVX512-BF16 or AMX, Arm BF16); without it torch emulates bf16
        matmuls, two orders of magnitude slower than fp32 on a 2-core x86 VM (0.45 against ~50 GFLOP/s)."""
        return any(flag in self.inference_flags for flag in NATIVE_BF16_FLAGS)


@dataclass(frozen=True)
class Software:
    """Versions of what the measurements and predictions depend on."""

    python_version: str
    os_name: str
    os_release: str
    torch_version: str | Unavailable
    torch_cuda_version: str | Unavailable
    torch_mps_available: bool | Unavailable
    triton_version: str | Unavailable
    transformers_version: str | Unavailable
    vllm_version: str | Unavailable
    nvidia_ml_py_version: str | Unavailable


@dataclass(frozen=True)
class Identity:
    """Who the machine is; ``--anonymize`` replaces these strings with salted hashes."""

    hostname: str
    anonymized: bool


@dataclass(frozen=True)
class Machine:
    """Everything the probes found, in one record.

    ``warnings`` are things that make measurements on this machine unreliable or figures doubtful;
    ``probe_notes`` say what each probe looked for and did not find (no NVIDIA driver, not a Mac).
    """

    identity: Identity
    cpu: CpuInfo
    accelerators: tuple[Accelerator, ...]
    software: Software
    probe_seconds: float
    warnings: tuple[str, ...]
    probe_notes: tuple[str, ...]
