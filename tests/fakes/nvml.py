"""A fake NVML implementing ``dgprofile.probes._nvml.NvmlQuery``, with named scenarios.

The H100 and H200 answers are NVML's on an H100 SXM5 80GB and an H200 SXM 141GB (driver 580.159.04,
nvidia-ml-py 13.610.43), dumped call by call on lent machines; only UUIDs and bus ids are made up. The GB10,
old-driver, lost-GPU, MIG and busy scenarios change those answers the way the cited reports describe (GB10 memory
info NOT_SUPPORTED: leptonai/gpud#1170, kubernetes-sigs/dra-driver-nvidia-gpu#1115).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dgprofile.probes import _nvml

MIB = 1 << 20


@dataclass(frozen=True)
class Fail:
    """An NVML call that returns this error code."""

    code: int


@dataclass(frozen=True)
class FakeHandle:
    index: int


@dataclass
class FakeGpu:
    """One GPU's answers: NVML function name (plus the clock type for MaxClockInfo) -> value or Fail."""

    answers: dict[str, Any]
    lost_at: str | None = None  # from this call on, every call on the device answers GPU_IS_LOST
    lost: bool = False

    def answer(self, fn_name: str) -> Any:
        self.lost = self.lost or fn_name == self.lost_at
        if self.lost:
            return Fail(_nvml.ERROR_GPU_IS_LOST)
        return self.answers.get(fn_name, Fail(_nvml.ERROR_NOT_SUPPORTED))


@dataclass
class FakeNvml:
    """Answers ``query`` like ``dgprofile.probes._nvml.NvmlSession`` would, from scripted values."""

    gpus: list[FakeGpu]
    system: dict[str, Any] = field(default_factory=dict)
    process_names: dict[int, str] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def query(self, fn_name: str, *args: Any) -> Any:
        self.calls.append(fn_name)
        if fn_name == "nvmlDeviceGetCount" and fn_name not in self.system:
            return len(self.gpus)
        if fn_name == "nvmlDeviceGetHandleByIndex":
            if args[0] >= len(self.gpus):
                return _nvml.unavailable_for(_nvml.ERROR_INVALID_ARGUMENT, fn_name)
            return FakeHandle(args[0])
        if fn_name == "nvmlSystemGetProcessName":
            name = self.process_names.get(args[0])
            return name if name is not None else _nvml.unavailable_for(_nvml.ERROR_NOT_FOUND, fn_name)
        if args and isinstance(args[0], FakeHandle):
            key = fn_name
            if fn_name in ("nvmlDeviceGetMaxClockInfo", "nvmlDeviceGetNvLinkState", "nvmlDeviceGetNvLinkVersion",
                           "nvmlDeviceGetNvLinkRemoteDeviceType", "nvmlDeviceGetNvLinkRemotePciInfo_v2"):
                key = f"{fn_name}:{args[1]}"  # the clock type, or the link number
            if fn_name in ("nvmlDeviceGetTopologyCommonAncestor", "nvmlDeviceGetP2PStatus"):
                key = f"{fn_name}:{args[1].index}" + (f":{args[2]}" if len(args) > 2 else "")  # the peer
            if fn_name == "nvmlDeviceGetMemoryInfo" and len(args) == 2:
                key = "nvmlDeviceGetMemoryInfo:v2"
            value = self.gpus[args[0].index].answer(key)
        else:
            value = self.system.get(fn_name, Fail(_nvml.ERROR_NOT_SUPPORTED))
        if isinstance(value, Fail):
            _nvml.raise_if_fatal(value.code, fn_name)
            return _nvml.unavailable_for(value.code, fn_name)
        return copy.deepcopy(value)


DRIVER_580 = {"nvmlSystemGetDriverVersion": "580.159.04", "nvmlSystemGetCudaDriverVersion": 13000,
              "nvmlSystemGetNVMLVersion": "13.580.159.04"}


def hopper_answers(*, name: str, uuid: str, bus_id: str, total: int, reserved: int, bus_width: int,
                   memory_clock_mhz: int) -> dict[str, Any]:
    """An idle Hopper GPU's NVML answers (layout as read from the H200)."""
    return {
        "nvmlDeviceGetName": name, "nvmlDeviceGetUUID": uuid,
        "nvmlDeviceGetPciInfo": {"busIdLegacy": bus_id[4:], "domain": 0, "bus": 0, "device": 6,
                                 "pciDeviceId": 590680286, "pciSubSystemId": 415174878, "busId": bus_id},
        "nvmlDeviceGetArchitecture": 9, "nvmlDeviceGetCudaComputeCapability": [9, 0],
        "nvmlDeviceGetMemoryInfo:v2": {"version": _nvml.MEMORY_INFO_V2, "total": total, "reserved": reserved,
                                       "free": total - reserved, "used": 0},
        "nvmlDeviceGetMemoryInfo": {"total": total, "free": total - reserved, "used": reserved},
        "nvmlDeviceGetMemoryBusWidth": bus_width,
        f"nvmlDeviceGetMaxClockInfo:{_nvml.CLOCK_MEM}": memory_clock_mhz,
        f"nvmlDeviceGetMaxClockInfo:{_nvml.CLOCK_SM}": 1980,
        "nvmlDeviceGetAttributes": Fail(_nvml.ERROR_NOT_SUPPORTED),  # only MIG handles answer this
        "nvmlDeviceGetNumGpuCores": 16896,
        "nvmlDeviceGetEnforcedPowerLimit": 700000,
        "nvmlDeviceGetMaxPcieLinkGeneration": 5, "nvmlDeviceGetMaxPcieLinkWidth": 16,
        "nvmlDeviceGetMigMode": [0, 0], "nvmlDeviceGetEccMode": [1, 1],
        "nvmlDeviceGetUtilizationRates": {"gpu": 0, "memory": 0},
        "nvmlDeviceGetComputeRunningProcesses": [], "nvmlDeviceGetGraphicsRunningProcesses": [],
        "nvmlDeviceGetAddressingMode": 0, "nvmlDeviceGetC2cModeInfoV": {"isC2cEnabled": 0},
        "nvmlDeviceGetNumaNodeId": Fail(_nvml.ERROR_NOT_SUPPORTED),
    }


def h100_answers(index: int = 0) -> dict[str, Any]:
    return hopper_answers(name="NVIDIA H100 80GB HBM3", uuid=f"GPU-11111111-2222-3333-4444-00000000000{index}",
                          bus_id=f"00000000:{0x18 + index:02X}:00.0", total=81559 * MIB, reserved=480 * MIB,
                          bus_width=5120, memory_clock_mhz=2619)


def h200_answers() -> dict[str, Any]:
    return hopper_answers(name="NVIDIA H200", uuid="GPU-78247eb8-96cc-558b-e432-7f1d5a90da1d",
                          bus_id="00000000:00:06.0", total=150754820096, reserved=644939776, bus_width=6016,
                          memory_clock_mhz=3201)


def healthy_h100() -> FakeNvml:
    return FakeNvml([FakeGpu(h100_answers())], system=dict(DRIVER_580))


def h200() -> FakeNvml:
    return FakeNvml([FakeGpu(h200_answers())], system=dict(DRIVER_580))


def gb10() -> FakeNvml:
    """DGX Spark: no dedicated memory (NOT_SUPPORTED), ATS addressing, Blackwell 12.1, LPDDR5X."""
    answers = h100_answers()
    not_supported = Fail(_nvml.ERROR_NOT_SUPPORTED)
    answers.update({
        "nvmlDeviceGetName": "NVIDIA GB10", "nvmlDeviceGetArchitecture": 10,
        "nvmlDeviceGetCudaComputeCapability": [12, 1],
        "nvmlDeviceGetMemoryInfo:v2": not_supported, "nvmlDeviceGetMemoryInfo": not_supported,
        "nvmlDeviceGetMemoryBusWidth": not_supported,
        f"nvmlDeviceGetMaxClockInfo:{_nvml.CLOCK_MEM}": not_supported,
        "nvmlDeviceGetNumGpuCores": 6144, "nvmlDeviceGetAddressingMode": 2,
        "nvmlDeviceGetC2cModeInfoV": {"isC2cEnabled": 1}, "nvmlDeviceGetEccMode": not_supported,
        "nvmlDeviceGetEnforcedPowerLimit": not_supported,
    })
    return FakeNvml([FakeGpu(answers)], system=dict(DRIVER_580))


def old_driver() -> FakeNvml:
    """An R470-era driver: the newer functions are missing from its NVML (FUNCTION_NOT_FOUND)."""
    answers = h100_answers()
    missing = Fail(_nvml.ERROR_FUNCTION_NOT_FOUND)
    for fn_name in ("nvmlDeviceGetMemoryInfo:v2", "nvmlDeviceGetMemoryBusWidth", "nvmlDeviceGetNumGpuCores",
                    "nvmlDeviceGetArchitecture", "nvmlDeviceGetAddressingMode", "nvmlDeviceGetC2cModeInfoV",
                    "nvmlDeviceGetPciInfo"):
        answers[fn_name] = missing
    answers["nvmlDeviceGetMemoryInfo"] = {"total": 81559 * MIB, "free": 81000 * MIB, "used": 559 * MIB}
    return FakeNvml([FakeGpu(answers)], system={**DRIVER_580, "nvmlSystemGetDriverVersion": "470.256.02",
                                                "nvmlSystemGetCudaDriverVersion": 11040})


def gpu_lost_mid_query() -> FakeNvml:
    """Two H100s; the second falls off the bus while its memory is being read."""
    return FakeNvml([FakeGpu(h100_answers(0)), FakeGpu(h100_answers(1), lost_at="nvmlDeviceGetMemoryBusWidth")],
                    system=dict(DRIVER_580))


def mig_enabled() -> FakeNvml:
    answers = h100_answers()
    answers.update({"nvmlDeviceGetMigMode": [1, 1],
                    "nvmlDeviceGetUtilizationRates": Fail(_nvml.ERROR_NOT_SUPPORTED),
                    "nvmlDeviceGetComputeRunningProcesses": Fail(_nvml.ERROR_NO_PERMISSION),
                    "nvmlDeviceGetGraphicsRunningProcesses": Fail(_nvml.ERROR_NO_PERMISSION)})
    return FakeNvml([FakeGpu(answers)], system=dict(DRIVER_580))


def busy_gpu() -> FakeNvml:
    """An H100 serving another model: two processes hold memory and the GPU is 87% utilised."""
    answers = h100_answers()
    answers.update({
        "nvmlDeviceGetUtilizationRates": {"gpu": 87, "memory": 61},
        "nvmlDeviceGetComputeRunningProcesses": [
            {"pid": 4242, "usedGpuMemory": 70 * 1024 * MIB, "gpuInstanceId": 0xFFFFFFFF,
             "computeInstanceId": 0xFFFFFFFF},
            {"pid": 5151, "usedGpuMemory": None, "gpuInstanceId": 0xFFFFFFFF, "computeInstanceId": 0xFFFFFFFF}],
    })
    return FakeNvml([FakeGpu(answers)], system=dict(DRIVER_580),
                    process_names={4242: "/home/alice/.venv/bin/python3"})


# What nvmlDeviceGetComputeRunningProcesses answered through pynvml on a lent H200 (driver 580.159.04) while a
# process (pid 496) held a context and a 1 GiB allocation made through libcuda: its 1 GiB plus the context's
# 518 MiB. No MIG, so both instance ids are NVML's "none" (0xFFFFFFFF); the pid is the one the process saw itself.
H200_ONE_GIB_PROCESS = {"pid": 496, "usedGpuMemory": 1616904192, "gpuInstanceId": 0xFFFFFFFF,
                        "computeInstanceId": 0xFFFFFFFF}


def h200_serving() -> FakeNvml:
    """An H200 with one compute process: the server's GPU worker (a child of the process listening on its port)."""
    answers = h200_answers()
    answers["nvmlDeviceGetComputeRunningProcesses"] = [dict(H200_ONE_GIB_PROCESS)]
    return FakeNvml([FakeGpu(answers)], system=dict(DRIVER_580))


def nvlink_answers(links: int, version_code: int) -> dict[str, Any]:
    """``links`` active NVLink links of one version (nvmlNvlinkVersion_t code); the next link does not exist."""
    answers: dict[str, Any] = {}
    for link in range(links):
        answers[f"nvmlDeviceGetNvLinkState:{link}"] = _nvml.FEATURE_ENABLED
        answers[f"nvmlDeviceGetNvLinkVersion:{link}"] = version_code
    answers[f"nvmlDeviceGetNvLinkState:{links}"] = Fail(_nvml.ERROR_INVALID_ARGUMENT)
    return answers


def peer_answers(peer: int, *, level: int, read: int, nvlink: int) -> dict[str, Any]:
    """How a GPU reaches ``peer``: NVML's topology level, and the P2P status for reads and over NVLink."""
    return {f"nvmlDeviceGetTopologyCommonAncestor:{peer}": level,
            f"nvmlDeviceGetP2PStatus:{peer}:{_nvml.P2P_CAPS_INDEX_READ}": read,
            f"nvmlDeviceGetP2PStatus:{peer}:{_nvml.P2P_CAPS_INDEX_NVLINK}": nvlink}


def hgx_h100_pair() -> FakeNvml:
    """Two H100 SXM of an HGX board: 18 NVLink 4 links each (nvmlNvlinkVersion_t 6) to the NVSwitches, on
    different PCIe roots of one socket, peer-to-peer over NVLink."""
    gpus = []
    for index, peer in ((0, 1), (1, 0)):
        answers = h100_answers(index)
        answers.update(nvlink_answers(18, 6))
        answers.update(peer_answers(peer, level=40, read=_nvml.P2P_STATUS_OK, nvlink=_nvml.P2P_STATUS_OK))
        gpus.append(FakeGpu(answers))
    return FakeNvml(gpus, system=dict(DRIVER_580))


def rtx_3090_pair() -> FakeNvml:
    """Two GeForce RTX 3090 on one host bridge, PCIe 4.0 x16, no NVLink bridge: NVLink is not supported and
    the GeForce driver refuses peer-to-peer (NVML_P2P_STATUS_GPU_NOT_SUPPORTED)."""
    gpus = []
    for index, peer in ((0, 1), (1, 0)):
        answers = h100_answers(index)
        answers.update({
            "nvmlDeviceGetName": "NVIDIA GeForce RTX 3090", "nvmlDeviceGetArchitecture": 7,
            "nvmlDeviceGetCudaComputeCapability": [8, 6], "nvmlDeviceGetNumGpuCores": 10496,
            "nvmlDeviceGetMemoryBusWidth": 384, f"nvmlDeviceGetMaxClockInfo:{_nvml.CLOCK_MEM}": 9751,
            "nvmlDeviceGetMemoryInfo:v2": {"version": _nvml.MEMORY_INFO_V2, "total": 24576 * MIB,
                                           "reserved": 300 * MIB, "free": 24276 * MIB, "used": 0},
            "nvmlDeviceGetMaxPcieLinkGeneration": 4, "nvmlDeviceGetEnforcedPowerLimit": 350000,
            "nvmlDeviceGetEccMode": Fail(_nvml.ERROR_NOT_SUPPORTED),
            "nvmlDeviceGetNvLinkState:0": Fail(_nvml.ERROR_NOT_SUPPORTED)})
        answers.update(peer_answers(peer, level=30, read=2, nvlink=5))
        gpus.append(FakeGpu(answers))
    return FakeNvml(gpus, system=dict(DRIVER_580))


def h200_answers_at(index: int) -> dict[str, Any]:
    """The H200's answers as GPU ``index`` of a multi-GPU host (its own UUID and bus id)."""
    answers = h200_answers()
    bus_id = f"00000000:{0x18 + 0x20 * index:02X}:00.0"
    answers.update({"nvmlDeviceGetUUID": f"GPU-78247eb8-96cc-558b-e432-7f1d5a90da1{index}",
                    "nvmlDeviceGetPciInfo": {**answers["nvmlDeviceGetPciInfo"], "busId": bus_id,
                                             "busIdLegacy": bus_id[4:]}})
    return answers


def h200_nvlink_pair() -> FakeNvml:
    """The lent 2x H200 machine as recorded (`nvidia-smi topo -m`: NV18): 18 active NVLink links each,
    nvmlDeviceGetTopologyCommonAncestor 30 (host bridge), P2P status OK for reads and over NVLink. Where the links
    lead was not read there (those calls answer NOT_SUPPORTED here), and their version is the H100 dump's (NVLink
    4, nvmlNvlinkVersion_t 6: both are Hopper)."""
    gpus = []
    for index, peer in ((0, 1), (1, 0)):
        answers = h200_answers_at(index)
        answers.update(nvlink_answers(18, 6))
        answers.update(peer_answers(peer, level=30, read=_nvml.P2P_STATUS_OK, nvlink=_nvml.P2P_STATUS_OK))
        gpus.append(FakeGpu(answers))
    return FakeNvml(gpus, system=dict(DRIVER_580))


def hgx_h200_nvswitch_four() -> FakeNvml:
    """Four H200 of an HGX board: each GPU's 18 NVLink 4 links lead to the NVSwitches (remote device type
    NVML_NVLINK_DEVICE_TYPE_SWITCH), GPUs 0-1 and 2-3 under one host bridge each, the pairs across them on one
    NUMA node; peer-to-peer over NVLink between all of them."""
    gpus = []
    for index in range(4):
        answers = h200_answers_at(index)
        answers.update(nvlink_answers(18, 6))
        for link in range(18):
            answers[f"nvmlDeviceGetNvLinkRemoteDeviceType:{link}"] = _nvml.NVLINK_DEVICE_TYPE_SWITCH
        for peer in range(4):
            if peer != index:
                level = 30 if peer // 2 == index // 2 else 40
                answers.update(peer_answers(peer, level=level, read=_nvml.P2P_STATUS_OK, nvlink=_nvml.P2P_STATUS_OK))
        gpus.append(FakeGpu(answers))
    return FakeNvml(gpus, system=dict(DRIVER_580))


def topology_call_fails() -> FakeNvml:
    """Two H200 without NVLink where GPU 1 answers every topology query with NVML_ERROR_UNKNOWN (as a driver
    whose topology read breaks does), and GPU 0 reaches it through the host bridge with peer-to-peer."""
    first, second = h200_answers_at(0), h200_answers_at(1)
    first.update(peer_answers(1, level=30, read=_nvml.P2P_STATUS_OK, nvlink=5))
    second.update({"nvmlDeviceGetTopologyCommonAncestor:0": Fail(_nvml.ERROR_UNKNOWN),
                   f"nvmlDeviceGetP2PStatus:0:{_nvml.P2P_CAPS_INDEX_READ}": Fail(_nvml.ERROR_UNKNOWN),
                   f"nvmlDeviceGetP2PStatus:0:{_nvml.P2P_CAPS_INDEX_NVLINK}": Fail(_nvml.ERROR_UNKNOWN)})
    return FakeNvml([FakeGpu(first), FakeGpu(second)], system=dict(DRIVER_580))


SCENARIOS: dict[str, Callable[[], FakeNvml]] = {
    "healthy-h100": healthy_h100, "h200": h200, "gb10": gb10, "old-driver": old_driver,
    "gpu-lost-mid-query": gpu_lost_mid_query, "mig-enabled": mig_enabled, "busy-gpu": busy_gpu,
    "hgx-h100-pair": hgx_h100_pair, "rtx-3090-pair": rtx_3090_pair, "h200-serving": h200_serving,
    "h200-nvlink-pair": h200_nvlink_pair, "hgx-h200-nvswitch-four": hgx_h200_nvswitch_four,
    "topology-call-fails": topology_call_fails,
}
