"""Stand-ins for the parts of torch that tell CUDA, ROCm and XPU builds apart, for tests without those devices.

Each answers only what the backend helpers ask: ``torch.version.hip`` (None on CUDA builds, the HIP version on
ROCm builds), ``torch.cuda`` device properties (HIP fills ``gcnArchName``, e.g. "gfx942:sramecc+:xnack-", and
torch's ROCm builds report the LLVM target's major/minor as the "compute capability", 9.4 for gfx942), and the
``torch.xpu`` namespace of XPU builds with its device properties (``gpu_subslice_count`` counts Xe cores).
Property values are the parts' public figures (MI300X: 304 compute units, 4 MB L2 per XCD as HIP reports it;
Arc B580: 20 Xe cores, 12 GB).
"""

from __future__ import annotations

import types
from typing import Any


class _Event:
    """torch.xpu.Event: records nothing; elapsed_time answers a fixed 2.5 ms."""

    def __init__(self, enable_timing: bool = False) -> None:
        self.enable_timing = enable_timing

    def record(self) -> None:
        pass

    def synchronize(self) -> None:
        pass

    def elapsed_time(self, end: _Event) -> float:
        return 2.5


class _DeviceContext:
    def __init__(self, index: int) -> None:
        self.index = index

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def rocm_torch(*, gcn_arch: str = "gfx942:sramecc+:xnack-", name: str = "AMD Instinct MI300X",
               capability: tuple[int, int] = (9, 4), units: int = 304) -> Any:
    props = types.SimpleNamespace(name=name, gcnArchName=gcn_arch, L2_cache_size=4 << 20,
                                  multi_processor_count=units, is_integrated=False, memory_clock_rate=1300000,
                                  memory_bus_width=8192, total_memory=192 << 30)
    cuda = types.SimpleNamespace(
        is_available=lambda: True, device_count=lambda: 1, current_device=lambda: 0,
        get_device_properties=lambda device: props, get_device_capability=lambda device: capability,
        mem_get_info=lambda device: (190 << 30, 192 << 30))
    return types.SimpleNamespace(version=types.SimpleNamespace(hip="6.4.43482", cuda=None), cuda=cuda,
                                 device=lambda text: text, _scaled_mm=object(), _int_mm=object(),
                                 float8_e4m3fn="float8_e4m3fn", float8_e4m3fnuz="float8_e4m3fnuz",
                                 __version__="2.9.0+rocm6.4")


def cuda_torch(*, capability: tuple[int, int] = (9, 0)) -> Any:
    props = types.SimpleNamespace(name="NVIDIA H100 80GB HBM3", L2_cache_size=50 << 20, multi_processor_count=132,
                                  is_integrated=False, memory_clock_rate=2619000, memory_bus_width=5120)
    cuda = types.SimpleNamespace(
        is_available=lambda: True, device_count=lambda: 1, current_device=lambda: 0,
        get_device_properties=lambda device: props, get_device_capability=lambda device: capability,
        mem_get_info=lambda device: (80 << 30, 81 << 30))
    return types.SimpleNamespace(version=types.SimpleNamespace(hip=None, cuda="13.0"), cuda=cuda,
                                 device=lambda text: text, _scaled_mm=object(), _int_mm=object(),
                                 float8_e4m3fn="float8_e4m3fn", float8_e4m3fnuz="float8_e4m3fnuz",
                                 __version__="2.11.0+cu130")


def xpu_torch(*, name: str = "Intel(R) Arc(TM) B580 Graphics", xe_cores: int = 20) -> Any:
    props = types.SimpleNamespace(name=name, gpu_subslice_count=xe_cores, gpu_eu_count=8 * xe_cores,
                                  max_compute_units=8 * xe_cores, total_memory=12 << 30)
    xpu = types.SimpleNamespace(
        is_available=lambda: True, device_count=lambda: 1, current_device=lambda: 0,
        get_device_properties=lambda index: props, mem_get_info=lambda index: (11 << 30, 12 << 30),
        Event=_Event, device=_DeviceContext, synchronize=lambda: None)
    cuda = types.SimpleNamespace(is_available=lambda: False, device_count=lambda: 0)
    return types.SimpleNamespace(version=types.SimpleNamespace(hip=None, cuda=None), cuda=cuda, xpu=xpu,
                                 backends=types.SimpleNamespace(mps=types.SimpleNamespace(is_available=lambda: False)),
                                 device=lambda text: text, _scaled_mm=object(), __version__="2.9.0+xpu")
