"""The one module that imports ``amdsmi`` (AMD SMI, the ROCm SMI successor): a small seam the AMD probe talks to.

``open_amdsmi()`` initialises the library for AMD GPUs and shuts it down afterwards; it yields an
``AmdSmiSession`` or, when the bindings or the driver are missing, an ``Unavailable`` with the reason.
``AmdSmiSession.query(fn_name, *args)`` calls one ``amdsmi`` function and returns its plain Python values
(the bindings already answer dicts, lists and strings) or ``Unavailable(reason)`` for errors that concern only
that value. Enumeration arguments are passed as ``EnumArg`` (``MEMORY_GTT``, ``CLOCK_MEM``) so the probe never
touches the bindings' classes. Errors that mean the whole device is gone raise ``DeviceLostError``. Tests replace
the session with a fake that implements the same ``query`` (tests/fakes/amdsmi.py) and builds its errors with
``unavailable_for``, so both speak the same reasons.

The bindings ship with ROCm (``pip install /opt/rocm/share/amd_smi``) and load its ``libamd_smi.so``; the
``amdsmi`` package on PyPI is a redistribution of the same wrapper and works where its version matches the
installed library. Importing the wrapper without the library prints to stdout and fails with a KeyError, so the
import runs with stdout captured and any failure becomes the reason.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from dgprofile.records.values import Unavailable

# Status codes from amdsmi.h (amdsmi_status_t), so the probe never touches the bindings' constants.
STATUS_INVAL = 1
STATUS_NOT_SUPPORTED = 2
STATUS_NOT_YET_IMPLEMENTED = 3
STATUS_FAIL_LOAD_MODULE = 4
STATUS_DRM_ERROR = 6
STATUS_API_FAILED = 7
STATUS_NO_PERM = 10
STATUS_IO = 12
STATUS_FILE_ERROR = 14
STATUS_INIT_ERROR = 18
STATUS_BUSY = 30
STATUS_NOT_FOUND = 31
STATUS_NOT_INIT = 32
STATUS_DRIVER_NOT_LOADED = 34
STATUS_NO_DATA = 40
STATUS_AMDGPU_RESTART_ERR = 54
STATUS_UNKNOWN_ERROR = 4294967295

STATUS_NAMES = {
    1: "AMDSMI_STATUS_INVAL", 2: "AMDSMI_STATUS_NOT_SUPPORTED", 3: "AMDSMI_STATUS_NOT_YET_IMPLEMENTED",
    4: "AMDSMI_STATUS_FAIL_LOAD_MODULE", 5: "AMDSMI_STATUS_FAIL_LOAD_SYMBOL", 6: "AMDSMI_STATUS_DRM_ERROR",
    7: "AMDSMI_STATUS_API_FAILED", 8: "AMDSMI_STATUS_TIMEOUT", 9: "AMDSMI_STATUS_RETRY",
    10: "AMDSMI_STATUS_NO_PERM", 11: "AMDSMI_STATUS_INTERRUPT", 12: "AMDSMI_STATUS_IO",
    14: "AMDSMI_STATUS_FILE_ERROR", 15: "AMDSMI_STATUS_OUT_OF_RESOURCES", 18: "AMDSMI_STATUS_INIT_ERROR",
    30: "AMDSMI_STATUS_BUSY", 31: "AMDSMI_STATUS_NOT_FOUND", 32: "AMDSMI_STATUS_NOT_INIT",
    34: "AMDSMI_STATUS_DRIVER_NOT_LOADED", 40: "AMDSMI_STATUS_NO_DATA", 52: "AMDSMI_STATUS_FILE_NOT_FOUND",
    54: "AMDSMI_STATUS_AMDGPU_RESTART_ERR", 4294967295: "AMDSMI_STATUS_UNKNOWN_ERROR",
}

_EXPLANATIONS = {
    STATUS_NOT_SUPPORTED: "not supported on this GPU or driver",
    STATUS_NOT_YET_IMPLEMENTED: "not implemented for this GPU by this amdsmi",
    STATUS_NO_PERM: "not permitted for this user (run as root, or join the render and video groups)",
    STATUS_DRM_ERROR: "the DRM interface of the amdgpu driver failed",
    STATUS_IO: "the driver's sysfs file could not be read",
    STATUS_FILE_ERROR: "the driver's sysfs file could not be opened",
    STATUS_INIT_ERROR: "amdsmi could not initialise (is the amdgpu driver loaded?)",
    STATUS_NOT_FOUND: "the GPU is no longer present",
    STATUS_DRIVER_NOT_LOADED: "the amdgpu kernel driver is not loaded",
    STATUS_NO_DATA: "the driver has no data for it",
    STATUS_AMDGPU_RESTART_ERR: "the amdgpu driver failed to restart the GPU",
}

# Errors after which nothing more can be learnt about the device: the probe records it as failed.
DEVICE_FATAL_ERRORS = frozenset({STATUS_NOT_FOUND, STATUS_DRIVER_NOT_LOADED, STATUS_AMDGPU_RESTART_ERR})

# What the bindings write for a field the driver does not fill (their _validate_if_max_uint).
NOT_AVAILABLE_TEXT = "N/A"


class DeviceLostError(Exception):
    """The device stopped answering in the middle of the probe (gone, driver unloaded, failed restart)."""


@dataclass(frozen=True)
class EnumArg:
    """A member of one of the bindings' enumerations, named so the probe needs no import of them."""

    enum: str
    member: str


MEMORY_VRAM = EnumArg("AmdSmiMemoryType", "VRAM")
MEMORY_GTT = EnumArg("AmdSmiMemoryType", "GTT")
CLOCK_MEM = EnumArg("AmdSmiClkType", "MEM")
CLOCK_GFX = EnumArg("AmdSmiClkType", "GFX")
INIT_AMD_GPUS = EnumArg("AmdSmiInitFlags", "INIT_AMD_GPUS")


def unavailable_for(code: int, what: str) -> Unavailable:
    """The readable reason for an amdsmi status, ending with the status name so users can search for it."""
    explanation = _EXPLANATIONS.get(code, "amdsmi reported an error")
    return Unavailable(f"{what}: {explanation} ({STATUS_NAMES.get(code, f'amdsmi status {code}')})")


def status_of(value: object) -> int | None:
    """The amdsmi status behind an ``Unavailable`` made by ``unavailable_for`` (None for anything else)."""
    if not isinstance(value, Unavailable):
        return None
    match = re.search(r"\((AMDSMI_STATUS_[A-Z_]+|amdsmi status (\d+))\)$", value.reason)
    if match is None:
        return None
    if match.group(2):
        return int(match.group(2))
    return next((code for code, name in STATUS_NAMES.items() if name == match.group(1)), None)


def raise_if_fatal(code: int, what: str) -> None:
    """Raise DeviceLostError when ``code`` means the device is gone."""
    if code in DEVICE_FATAL_ERRORS:
        raise DeviceLostError(unavailable_for(code, what).reason)


class AmdSmiQuery(Protocol):
    """What the AMD probe needs from amdsmi; the real session and the test fakes both provide it."""

    def query(self, fn_name: str, *args: Any) -> Any:
        """Call ``amdsmi.<fn_name>``; return plain values or ``Unavailable``; raise DeviceLostError."""
        ...


class AmdSmiSession:
    """amdsmi after a successful init: every query answers a value or an Unavailable, never a crash."""

    def __init__(self, module: Any) -> None:
        self._module = module

    def _argument(self, value: Any) -> Any:
        return getattr(self._module, value.enum)[value.member] if isinstance(value, EnumArg) else value

    def query(self, fn_name: str, *args: Any) -> Any:
        """Call ``amdsmi.<fn_name>(*args)`` and return its plain result (see the module docstring)."""
        fn = getattr(self._module, fn_name, None)
        if fn is None:
            return Unavailable(f"{fn_name}: this amdsmi is too old to offer it (use the bindings of a newer ROCm)")
        try:
            return fn(*(self._argument(arg) for arg in args))
        except self._module.AmdSmiLibraryException as exc:
            code = int(exc.get_error_code())
            raise_if_fatal(code, fn_name)
            return unavailable_for(code, fn_name)


@contextlib.contextmanager
def open_amdsmi(module_loader: Any = None) -> Iterator[AmdSmiSession | Unavailable]:
    """Initialise amdsmi for AMD GPUs for the duration of a ``with`` block; yields Unavailable when it cannot.

    ``module_loader`` (a callable returning the amdsmi module) exists for tests of this seam only.
    """
    try:
        module = module_loader() if module_loader else _import_amdsmi()
    except ImportError as exc:
        yield Unavailable(f"the amdsmi Python bindings are not installed ({exc}); install ROCm's "
                          "(pip install /opt/rocm/share/amd_smi) to probe AMD GPUs")
        return
    except (OSError, KeyError, AttributeError) as exc:  # the wrapper found no libamd_smi.so
        yield Unavailable(f"amdsmi is installed but its library libamd_smi.so could not be loaded "
                          f"({type(exc).__name__}: {exc}): no ROCm here")
        return
    session = AmdSmiSession(module)
    try:
        module.amdsmi_init(session._argument(INIT_AMD_GPUS))
    except module.AmdSmiLibraryException as exc:
        yield unavailable_for(int(exc.get_error_code()), "amdsmi init")
        return
    try:
        yield session
    finally:
        try:
            module.amdsmi_shut_down()
        except module.AmdSmiLibraryException:
            pass  # shutting down a half-broken amdsmi must not turn a finished probe into a failure


def _import_amdsmi() -> Any:
    # The wrapper prints its library-not-found message to stdout, which would corrupt `probe --json`.
    with contextlib.redirect_stdout(io.StringIO()):
        import amdsmi

    return amdsmi
