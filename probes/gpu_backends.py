"""What a torch device can do, per backend: CUDA on NVIDIA, HIP on AMD (ROCm builds expose it as "cuda"), XPU
on Intel. Every function takes the torch module (imported lazily by its caller) and a device string.

fp8 matrix units: NVIDIA from compute capability 8.9 (Ada, Hopper, Blackwell); AMD CDNA 3 (gfx94x) in the FNUZ
variant of e4m3 and CDNA 4 (gfx950) and RDNA 4 (gfx12xx) in the OCP variant (AMD's ROCm precision-support
table, https://rocm.docs.amd.com/en/latest/reference/precision-support.html); Intel Arc's XMX engines have none.
"""

from __future__ import annotations

import re
from typing import Any

ROCM_FNUZ_FP8_TARGETS = ("gfx94",)
ROCM_OCP_FP8_TARGETS = ("gfx95", "gfx12")


def is_rocm(torch: Any) -> bool:
    """Whether this torch is a ROCm build (its "cuda" devices are AMD GPUs driven through HIP)."""
    return getattr(getattr(torch, "version", None), "hip", None) is not None


def backend_name(torch: Any, device: str) -> str:
    """"CUDA", "HIP (ROCm)", "XPU", "MPS" or "CPU": what runs the kernels on ``device``."""
    kind = device.partition(":")[0]
    if kind == "cuda":
        return "HIP (ROCm)" if is_rocm(torch) else "CUDA"
    return {"xpu": "XPU", "mps": "MPS"}.get(kind, "CPU")


def gfx_target(torch: Any, device: str) -> str | None:
    """The LLVM processor of an AMD device ("gfx942"), from HIP's gcnArchName; None off ROCm."""
    if not is_rocm(torch) or not device.startswith("cuda"):
        return None
    name = str(getattr(torch.cuda.get_device_properties(torch.device(device)), "gcnArchName", ""))
    match = re.match(r"gfx[0-9a-f]+", name)
    return match.group(0) if match else None


def native_fp8(torch: Any, device: str) -> tuple[bool, str]:
    """Whether the device multiplies fp8 natively through torch._scaled_mm, and why not when it does not."""
    if not hasattr(torch, "_scaled_mm"):
        return False, "this torch has no torch._scaled_mm"
    kind = device.partition(":")[0]
    if kind != "cuda":
        return False, f"no fp8 matrix units on {backend_name(torch, device)} through torch"
    target = gfx_target(torch, device)
    if target is not None:
        if target.startswith(ROCM_FNUZ_FP8_TARGETS + ROCM_OCP_FP8_TARGETS):
            return True, ""
        return False, f"{target} has no fp8 matrix units (CDNA 3/4 and RDNA 4 have them)"
    major, minor = torch.cuda.get_device_capability(torch.device(device))
    if (major, minor) >= (8, 9):
        return True, ""
    return False, f"fp8 needs compute capability 8.9; this GPU is {major}.{minor}"


def fp8_dtype(torch: Any, device: str) -> Any:
    """The e4m3 format the device's fp8 units take: FNUZ on CDNA 3, the OCP format everywhere else."""
    target = gfx_target(torch, device)
    if target is not None and target.startswith(ROCM_FNUZ_FP8_TARGETS):
        return torch.float8_e4m3fnuz
    return torch.float8_e4m3fn
