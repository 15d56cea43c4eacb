"""The one module that imports ``pynvml`` (package nvidia-ml-py): a small seam the NVIDIA probe talks to.

``open_nvml()`` initialises NVML lazily and shuts it down afterwards; it yields an ``NvmlSession`` or, when the
library is missing or broken, an ``Unavailable`` with the reason. ``NvmlSession.query(fn_name, *args)`` calls one
NVML function and returns plain Python values (ctypes structures become dicts, bytes become str) or
``Unavailable(reason)`` for errors that concern only that value (not supported, no permission, a function this
driver lacks). Errors that mean the whole device is gone raise ``DeviceLostError``. Tests replace the session
with a fake that implements the same ``query`` (tests/fakes/nvml.py) and builds its errors with
``unavailable_for``, so both speak the same reasons.
"""

from __future__ import annotations

import ctypes
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from dgprofile.records.values import Unavailable

# Enumeration values and error codes from nvml.h (stable ABI), so probes never touch pynvml's constants.
CLOCK_SM = 1
CLOCK_MEM = 2
MEMORY_INFO_V2 = 0x02000028  # nvmlMemory_v2: sizeof(nvmlMemory_v2_t) | 2 << 24
ADDRESSING_MODE_NAMES = {0: "none", 1: "HMM", 2: "ATS"}
ARCHITECTURE_NAMES = {2: "Kepler", 3: "Maxwell", 4: "Pascal", 5: "Volta", 6: "Turing", 7: "Ampere", 8: "Ada",
                      9: "Hopper", 10: "Blackwell", 13: "Rubin"}
# Topology: NVLink links are numbered from 0; a link past the device's last answers INVALID_ARGUMENT or
# NOT_SUPPORTED. nvmlNvlinkVersion_t values -> (NVLink version, bytes per second per link and direction: 20 GB/s
# for NVLink 1, 25 GB/s for NVLink 2 to 4, 50 GB/s for NVLink 5; NVIDIA's NVLink pages give the totals).
NVLINK_MAX_LINKS = 36
FEATURE_ENABLED = 1
NVLINK_VERSIONS = {1: (1, 20e9), 2: (2, 25e9), 3: (2, 25e9), 4: (3, 25e9), 5: (3, 25e9), 6: (4, 25e9), 7: (5, 50e9)}
# nvmlGpuTopologyLevel_t: the closest common ancestor of two GPUs.
TOPOLOGY_LEVELS = {0: "same board", 10: "single PCIe switch", 20: "multiple PCIe switches", 30: "host bridge",
                   40: "same NUMA node", 50: "across NUMA nodes"}
# What the far end of an NVLink link is (nvmlIntNvLinkDeviceType_t): another GPU, an IBM NPU, or an NVSwitch.
NVLINK_DEVICE_TYPE_SWITCH = 2
P2P_CAPS_INDEX_READ = 0
P2P_CAPS_INDEX_NVLINK = 2
P2P_STATUS_OK = 0
P2P_STATUS_NAMES = {1: "chipset not supported", 2: "GPU not supported", 3: "topology not supported",
                    4: "disabled by registry key", 5: "not supported", 6: "unknown"}

ERROR_INVALID_ARGUMENT = 2
ERROR_NOT_SUPPORTED = 3
ERROR_NO_PERMISSION = 4
ERROR_NOT_FOUND = 6
ERROR_DRIVER_NOT_LOADED = 9
ERROR_TIMEOUT = 10
ERROR_LIBRARY_NOT_FOUND = 12
ERROR_FUNCTION_NOT_FOUND = 13
ERROR_GPU_IS_LOST = 15
ERROR_RESET_REQUIRED = 16
ERROR_LIB_RM_VERSION_MISMATCH = 18
ERROR_GPU_NOT_FOUND = 28
ERROR_UNKNOWN = 999

ERROR_NAMES = {
    1: "NVML_ERROR_UNINITIALIZED", 2: "NVML_ERROR_INVALID_ARGUMENT", 3: "NVML_ERROR_NOT_SUPPORTED",
    4: "NVML_ERROR_NO_PERMISSION", 6: "NVML_ERROR_NOT_FOUND", 7: "NVML_ERROR_INSUFFICIENT_SIZE",
    8: "NVML_ERROR_INSUFFICIENT_POWER", 9: "NVML_ERROR_DRIVER_NOT_LOADED", 10: "NVML_ERROR_TIMEOUT",
    11: "NVML_ERROR_IRQ_ISSUE", 12: "NVML_ERROR_LIBRARY_NOT_FOUND", 13: "NVML_ERROR_FUNCTION_NOT_FOUND",
    14: "NVML_ERROR_CORRUPTED_INFOROM", 15: "NVML_ERROR_GPU_IS_LOST", 16: "NVML_ERROR_RESET_REQUIRED",
    17: "NVML_ERROR_OPERATING_SYSTEM", 18: "NVML_ERROR_LIB_RM_VERSION_MISMATCH", 19: "NVML_ERROR_IN_USE",
    20: "NVML_ERROR_MEMORY", 21: "NVML_ERROR_NO_DATA", 26: "NVML_ERROR_DEPRECATED", 27: "NVML_ERROR_NOT_READY",
    28: "NVML_ERROR_GPU_NOT_FOUND", 999: "NVML_ERROR_UNKNOWN",
}

_EXPLANATIONS = {
    ERROR_NOT_SUPPORTED: "not supported on this GPU or driver",
    ERROR_NO_PERMISSION: "not permitted for this user (run as root or ask the administrator)",
    ERROR_NOT_FOUND: "not found",
    ERROR_DRIVER_NOT_LOADED: "the NVIDIA kernel driver is not loaded",
    ERROR_TIMEOUT: "the driver timed out",
    ERROR_LIBRARY_NOT_FOUND: "the NVML library (libnvidia-ml) is not installed: no NVIDIA driver here",
    ERROR_FUNCTION_NOT_FOUND: "this driver's NVML lacks the function (the driver is older than the query)",
    ERROR_GPU_IS_LOST: "the GPU fell off the bus or stopped responding",
    ERROR_RESET_REQUIRED: "the GPU needs a reset before it can be used",
    ERROR_LIB_RM_VERSION_MISMATCH: "the NVML library and the kernel driver differ in version (reboot after an update)",
    ERROR_GPU_NOT_FOUND: "the GPU is no longer present",
}

# Errors after which nothing more can be learnt about the device: the probe records it as failed.
DEVICE_FATAL_ERRORS = frozenset({ERROR_GPU_IS_LOST, ERROR_RESET_REQUIRED, ERROR_GPU_NOT_FOUND})


class DeviceLostError(Exception):
    """The device stopped answering in the middle of the probe (lost, needs a reset, gone)."""


def unavailable_for(code: int, what: str) -> Unavailable:
    """The readable reason for an NVML error code, ending with the code's name so users can search for it."""
    explanation = _EXPLANATIONS.get(code, "NVML reported an error")
    return Unavailable(f"{what}: {explanation} ({ERROR_NAMES.get(code, f'NVML error {code}')})")


def error_code_of(value: object) -> int | None:
    """The NVML error code behind an ``Unavailable`` made by ``unavailable_for`` (None for anything else)."""
    if not isinstance(value, Unavailable):
        return None
    match = re.search(r"\((NVML_ERROR_[A-Z_]+|NVML error (\d+))\)$", value.reason)
    if match is None:
        return None
    if match.group(2):
        return int(match.group(2))
    return next((code for code, name in ERROR_NAMES.items() if name == match.group(1)), None)


def raise_if_fatal(code: int, what: str) -> None:
    """Raise DeviceLostError when ``code`` means the device is gone."""
    if code in DEVICE_FATAL_ERRORS:
        raise DeviceLostError(unavailable_for(code, what).reason)


class NvmlQuery(Protocol):
    """What the NVIDIA probe needs from NVML; the real session and the test fakes both provide it."""

    def query(self, fn_name: str, *args: Any) -> Any:
        """Call NVML function ``fn_name``; return plain values or ``Unavailable``; raise DeviceLostError."""
        ...


def plain(value: Any) -> Any:
    """NVML return values as plain Python: structures as dicts, friendly objects as dicts, bytes as str."""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, ctypes.Structure):
        return {name: plain(getattr(value, name)) for name, *_ in value._fields_}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if type(value).__name__ == "nvmlFriendlyObject":  # what pynvml makes of process-info structures
        return {k: plain(v) for k, v in vars(value).items()}
    return value  # numbers, str, None, and device handles (opaque pointers passed back to NVML)


PROCESS_MEMORY_NOT_REPORTED = Unavailable(
    "the driver does not report per-process memory here (as under Windows' WDDM driver model)")


def process_used_memory_bytes(entry: dict[str, Any]) -> int | Unavailable:
    """The GPU memory one entry of NVML's running-process lists says its process holds (``plain`` form)."""
    used = entry.get("usedGpuMemory")
    return used if isinstance(used, int) else PROCESS_MEMORY_NOT_REPORTED


class NvmlSession:
    """NVML after a successful init: every query answers a value or an Unavailable, never a crash."""

    def __init__(self, module: Any) -> None:
        self._module = module

    def query(self, fn_name: str, *args: Any) -> Any:
        """Call ``pynvml.<fn_name>(*args)`` and return its result as plain values (see module docstring)."""
        fn = getattr(self._module, fn_name, None)
        if fn is None:
            return Unavailable(f"{fn_name}: this nvidia-ml-py is too old to offer it (upgrade nvidia-ml-py)")
        try:
            return plain(fn(*args))
        except self._module.NVMLError as exc:
            code = int(getattr(exc, "value", ERROR_UNKNOWN))
            raise_if_fatal(code, fn_name)
            return unavailable_for(code, fn_name)


@contextmanager
def open_nvml(module_loader: Any = None) -> Iterator[NvmlSession | Unavailable]:
    """Initialise NVML for the duration of a ``with`` block; yields Unavailable when it cannot be used.

    ``module_loader`` (a callable returning the pynvml module) exists for tests of this seam only.
    """
    try:
        module = module_loader() if module_loader else _import_pynvml()
    except ImportError as exc:
        yield Unavailable(f"nvidia-ml-py is not installed ({exc}); `pip install nvidia-ml-py` to probe NVIDIA")
        return
    try:
        module.nvmlInit()
    except module.NVMLError as exc:
        yield unavailable_for(int(getattr(exc, "value", ERROR_UNKNOWN)), "NVML init")
        return
    except OSError as exc:  # a broken libnvidia-ml that ctypes cannot load
        yield Unavailable(f"NVML init: the NVML library could not be loaded ({exc})")
        return
    try:
        yield NvmlSession(module)
    finally:
        try:
            module.nvmlShutdown()
        except module.NVMLError:
            pass  # shutting down a half-broken NVML must not turn a finished probe into a failure


def _import_pynvml() -> Any:
    import pynvml

    return pynvml
