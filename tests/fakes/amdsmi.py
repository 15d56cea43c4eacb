"""A fake amdsmi implementing ``dgprofile.probes._amdsmi.AmdSmiQuery``, with named scenarios.

Not dumped from AMD hardware (none was available): every answer has the shape the amdsmi 7.0 Python wrapper
returns (its ``amdsmi_interface.py``: dicts with these keys, "N/A" for fields the driver leaves empty, memory in
bytes, ``vram_size`` in MB, clocks in MHz, power in microwatts, ``vram_max_bandwidth`` in GB/s), and the values
are the parts' public figures: MI300X 192 GB HBM3 on an 8192-bit bus with a 1300 MHz memory clock, 304 compute
units, gfx942, 750 W (AMD's MI300X data sheet); Radeon RX 7900 XTX 24 GB GDDR6 on 384 bits, 96 compute units,
gfx1100, 355 W (AMD's product page); Strix Halo (Ryzen AI Max+ 395) 40 compute units, gfx1151, PCI device 0x1586,
reporting only "AMD Radeon Graphics" as ROCm does on that APU, with the Linux set-up its users describe: a 512 MB
BIOS carve-out and the GTT raised to 115 GiB through ttm.pages_limit
(https://github.com/kyuz0/amd-strix-halo-vllm-toolboxes). UUIDs and bus ids are made up.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from dgprofile.probes import _amdsmi
from dgprofile.records.values import Unavailable

MIB = 1 << 20
GIB = 1 << 30


@dataclass(frozen=True)
class Fail:
    """An amdsmi call that raises AmdSmiLibraryException with this status."""

    code: int


@dataclass(frozen=True)
class FakeHandle:
    index: int


def _key(fn_name: str, args: tuple[Any, ...]) -> str:
    enums = [arg.member for arg in args if isinstance(arg, _amdsmi.EnumArg)]
    return ":".join([fn_name, *enums])


@dataclass
class FakeGpu:
    """One GPU's answers: function name (plus ":MEMBER" of an enumeration argument) -> value or Fail."""

    answers: dict[str, Any]
    lost_at: str | None = None  # from this call on, every call on the device answers NOT_FOUND
    lost: bool = False

    def answer(self, key: str) -> Any:
        self.lost = self.lost or key == self.lost_at
        if self.lost:
            return Fail(_amdsmi.STATUS_NOT_FOUND)
        return self.answers.get(key, Fail(_amdsmi.STATUS_NOT_SUPPORTED))


@dataclass
class FakeAmdSmi:
    """Answers ``query`` like ``dgprofile.probes._amdsmi.AmdSmiSession`` would, from scripted values."""

    gpus: list[FakeGpu]
    system: dict[str, Any] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def query(self, fn_name: str, *args: Any) -> Any:
        self.calls.append(fn_name)
        if fn_name == "amdsmi_get_processor_handles" and fn_name not in self.system:
            return [FakeHandle(i) for i in range(len(self.gpus))]
        if args and isinstance(args[0], FakeHandle):
            value = self.gpus[args[0].index].answer(_key(fn_name, args[1:]))
        else:
            value = self.system.get(fn_name, Fail(_amdsmi.STATUS_NOT_SUPPORTED))
        if isinstance(value, Fail):
            _amdsmi.raise_if_fatal(value.code, fn_name)
            return _amdsmi.unavailable_for(value.code, fn_name)
        return copy.deepcopy(value)


ROCM_7 = {"amdsmi_get_lib_version": {"major": 26, "minor": 0, "release": 0, "build": "26.0.0"},
          "amdsmi_get_rocm_version": (True, "7.0.0")}


def gpu_answers(*, market_name: str, device_id: str, rev_id: str, compute_units: int, gfx: str, vram_type: int,
                vram_mb: int, bus_bits: int | str, max_bandwidth_gbps: int | str, vram_total: int, vram_used: int,
                gtt_total: int, gtt_used: int, mem_clock_mhz: int, gfx_clock_mhz: int, power_w: int,
                pcie: tuple[int, int], bdf: str, uuid: str) -> dict[str, Any]:
    """An idle AMD GPU's amdsmi answers."""
    return {
        "amdsmi_get_gpu_asic_info": {
            "market_name": market_name, "vendor_id": "0x1002", "vendor_name": "Advanced Micro Devices Inc. [AMD/ATI]",
            "subvendor_id": "0x1002", "device_id": device_id, "rev_id": rev_id, "asic_serial": "0x0000000000000000",
            "oam_id": "N/A", "num_compute_units": compute_units, "target_graphics_version": gfx,
            "subsystem_id": device_id},
        "amdsmi_get_gpu_vram_info": {"vram_type": vram_type, "vram_vendor": "N/A", "vram_size": vram_mb,
                                     "vram_bit_width": bus_bits, "vram_max_bandwidth": max_bandwidth_gbps},
        "amdsmi_get_gpu_memory_total:VRAM": vram_total, "amdsmi_get_gpu_memory_usage:VRAM": vram_used,
        "amdsmi_get_gpu_memory_total:GTT": gtt_total, "amdsmi_get_gpu_memory_usage:GTT": gtt_used,
        "amdsmi_get_clock_info:MEM": {"clk": mem_clock_mhz, "min_clk": 96, "max_clk": mem_clock_mhz,
                                      "clk_locked": False, "clk_deep_sleep": 0},
        "amdsmi_get_clock_info:GFX": {"clk": 132, "min_clk": 132, "max_clk": gfx_clock_mhz,
                                      "clk_locked": False, "clk_deep_sleep": 1},
        "amdsmi_get_power_cap_info": {"power_cap": power_w * 10**6, "default_power_cap": power_w * 10**6,
                                      "dpm_cap": 0, "min_power_cap": 0, "max_power_cap": power_w * 10**6},
        "amdsmi_get_pcie_info": {
            "pcie_static": {"max_pcie_width": pcie[1], "max_pcie_speed": 32000 if pcie[0] == 5 else 16000,
                            "pcie_interface_version": pcie[0], "slot_type": "OAM"},
            "pcie_metric": {"pcie_width": pcie[1], "pcie_speed": 32000, "pcie_bandwidth": "N/A"}},
        "amdsmi_get_gpu_activity": {"gfx_activity": 0, "umc_activity": 0, "mm_activity": "N/A"},
        "amdsmi_get_gpu_process_list": [],
        "amdsmi_get_gpu_driver_info": {"driver_name": "amdgpu", "driver_version": "6.12.12",
                                       "driver_date": "2015/01/01 00:00"},
        "amdsmi_get_gpu_device_uuid": uuid, "amdsmi_get_gpu_device_bdf": bdf,
    }


def mi300x_answers(index: int = 0) -> dict[str, Any]:
    answers = gpu_answers(
        market_name="AMD Instinct MI300X", device_id="0x74a1", rev_id="0x00", compute_units=304, gfx="gfx942",
        vram_type=4, vram_mb=196592, bus_bits=8192, max_bandwidth_gbps=5300, vram_total=196592 * MIB,
        vram_used=283 * MIB, gtt_total=1007 * GIB, gtt_used=12 * MIB, mem_clock_mhz=1300, gfx_clock_mhz=2100,
        power_w=750, pcie=(5, 16), bdf=f"0000:{0x0c + 0x10 * index:02x}:00.0",
        uuid=f"5fff74a1-0000-1000-80ea-0000000000{index:02d}")
    answers.update({"amdsmi_get_gpu_compute_partition": "SPX", "amdsmi_get_gpu_memory_partition": "NPS1"})
    return answers


def healthy_mi300x() -> FakeAmdSmi:
    return FakeAmdSmi([FakeGpu(mi300x_answers())], system=dict(ROCM_7))


def mi300x_cpx() -> FakeAmdSmi:
    """An MI300X split into 8 compute partitions (CPX): each logical GPU has 38 of the 304 compute units."""
    answers = mi300x_answers()
    answers["amdsmi_get_gpu_compute_partition"] = "CPX"
    answers["amdsmi_get_gpu_asic_info"]["num_compute_units"] = 38
    return FakeAmdSmi([FakeGpu(answers)], system=dict(ROCM_7))


def strix_halo(*, carve_out: int = 512 * MIB, gtt_total: int = 115 * GIB) -> FakeAmdSmi:
    """Ryzen AI Max+ 395: one LPDDR5X pool; VRAM is the BIOS carve-out, GTT the system memory the GPU maps."""
    answers = gpu_answers(
        market_name="AMD Radeon Graphics", device_id="0x1586", rev_id="0xc1", compute_units=40, gfx="gfx1151",
        vram_type=0, vram_mb=carve_out // MIB, bus_bits=256, max_bandwidth_gbps="N/A", vram_total=carve_out,
        vram_used=90 * MIB, gtt_total=gtt_total, gtt_used=300 * MIB, mem_clock_mhz=1000, gfx_clock_mhz=2900,
        power_w=120, pcie=(4, 16), bdf="0000:c5:00.0", uuid="00ff1586-0000-1000-8000-000000000000")
    answers["amdsmi_get_power_cap_info"] = Fail(_amdsmi.STATUS_NOT_SUPPORTED)
    return FakeAmdSmi([FakeGpu(answers)], system=dict(ROCM_7))


def radeon_7900_xtx() -> FakeAmdSmi:
    """A Radeon RX 7900 XTX on an older amdgpu that does not report a peak VRAM bandwidth."""
    answers = gpu_answers(
        market_name="AMD Radeon RX 7900 XTX", device_id="0x744c", rev_id="0xc8", compute_units=96, gfx="gfx1100",
        vram_type=22, vram_mb=24560, bus_bits=384, max_bandwidth_gbps="N/A", vram_total=24560 * MIB,
        vram_used=1120 * MIB, gtt_total=31 * GIB, gtt_used=40 * MIB, mem_clock_mhz=1249, gfx_clock_mhz=2500,
        power_w=355, pcie=(4, 16), bdf="0000:03:00.0", uuid="56ff744c-0000-1000-80cf-000000000000")
    answers["amdsmi_get_gpu_process_list"] = [
        {"name": "Xorg", "pid": 1850, "mem": 180 * MIB, "engine_usage": {"gfx": 0, "enc": 0},
         "memory_usage": {"gtt_mem": 20 * MIB, "cpu_mem": 0, "vram_mem": 180 * MIB}, "cu_occupancy": "N/A"}]
    return FakeAmdSmi([FakeGpu(answers)], system=dict(ROCM_7))


def device_lost() -> FakeAmdSmi:
    """Two MI300X; the second stops answering (NOT_FOUND) while its memory is being read."""
    return FakeAmdSmi([FakeGpu(mi300x_answers(0)),
                       FakeGpu(mi300x_answers(1), lost_at="amdsmi_get_gpu_memory_total:GTT")],
                      system=dict(ROCM_7))


SCENARIOS: dict[str, Callable[[], FakeAmdSmi]] = {
    "healthy-mi300x": healthy_mi300x, "mi300x-cpx": mi300x_cpx, "strix-halo": strix_halo,
    "radeon-7900-xtx": radeon_7900_xtx, "device-lost": device_lost,
}

DRIVER_MISSING = _amdsmi.unavailable_for(_amdsmi.STATUS_DRIVER_NOT_LOADED, "amdsmi init")
NOT_INSTALLED = Unavailable("the amdsmi Python bindings are not installed (No module named 'amdsmi')")


def opener(found: FakeAmdSmi | Unavailable) -> Callable[[], contextlib.AbstractContextManager[Any]]:
    """A ``ProbeSeams.open_amdsmi`` that yields ``found``."""
    @contextlib.contextmanager
    def open_amdsmi() -> Iterator[Any]:
        yield found

    return open_amdsmi
