"""The NVML seam itself: errors become readable Unavailable values, a lost GPU raises, a missing library is no crash.

A stand-in module plays pynvml here (same error-class shape: NVMLError carrying ``value``), so these tests run
without a driver; the real module is exercised on GPU machines by `dgprofile probe`.
"""

from __future__ import annotations

import ctypes
import types

import pytest

from dgprofile.probes import _nvml
from dgprofile.records.values import Unavailable


class NVMLError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value


class Memory(ctypes.Structure):
    _fields_ = [("total", ctypes.c_ulonglong), ("free", ctypes.c_ulonglong), ("used", ctypes.c_ulonglong)]


def stand_in(**functions) -> types.SimpleNamespace:
    def fail(code):
        def call(*args):
            raise NVMLError(code)
        return call

    module = types.SimpleNamespace(NVMLError=NVMLError, nvmlInit=lambda: None, nvmlShutdown=lambda: None)
    for name, behaviour in functions.items():
        setattr(module, name, fail(behaviour) if isinstance(behaviour, int) else behaviour)
    return module


def session(**functions) -> _nvml.NvmlSession:
    return _nvml.NvmlSession(stand_in(**functions))


def test_structures_become_dicts_and_bytes_become_text() -> None:
    nvml = session(nvmlDeviceGetMemoryInfo=lambda h: Memory(10, 4, 6), nvmlDeviceGetName=lambda h: b"NVIDIA H100")
    assert nvml.query("nvmlDeviceGetMemoryInfo", object()) == {"total": 10, "free": 4, "used": 6}
    assert nvml.query("nvmlDeviceGetName", object()) == "NVIDIA H100"


def test_not_supported_is_unavailable_with_searchable_code() -> None:
    value = session(nvmlDeviceGetMemoryInfo=_nvml.ERROR_NOT_SUPPORTED).query("nvmlDeviceGetMemoryInfo", 0)
    assert isinstance(value, Unavailable)
    assert value.reason == ("nvmlDeviceGetMemoryInfo: not supported on this GPU or driver "
                            "(NVML_ERROR_NOT_SUPPORTED)")
    assert _nvml.error_code_of(value) == _nvml.ERROR_NOT_SUPPORTED


@pytest.mark.parametrize(("code", "words"), [
    (_nvml.ERROR_FUNCTION_NOT_FOUND, "older than the query"),
    (_nvml.ERROR_NO_PERMISSION, "not permitted"),
    (12345, "NVML error 12345"),
])
def test_other_errors_read_as_reasons(code: int, words: str) -> None:
    value = session(nvmlDeviceGetMemoryBusWidth=code).query("nvmlDeviceGetMemoryBusWidth", 0)
    assert isinstance(value, Unavailable) and words in value.reason
    assert _nvml.error_code_of(value) == code


def test_function_missing_from_old_bindings_is_unavailable() -> None:
    value = session().query("nvmlDeviceGetC2cModeInfoV", 0)
    assert isinstance(value, Unavailable) and "upgrade nvidia-ml-py" in value.reason


@pytest.mark.parametrize("code", sorted(_nvml.DEVICE_FATAL_ERRORS))
def test_lost_gpu_raises(code: int) -> None:
    with pytest.raises(_nvml.DeviceLostError, match=_nvml.ERROR_NAMES[code]):
        session(nvmlDeviceGetUUID=code).query("nvmlDeviceGetUUID", 0)


def test_missing_library_yields_unavailable() -> None:
    module = stand_in(nvmlInit=_nvml.ERROR_LIBRARY_NOT_FOUND)
    with _nvml.open_nvml(lambda: module) as nvml:
        assert isinstance(nvml, Unavailable)
        assert "no NVIDIA driver here" in nvml.reason


def test_missing_bindings_yield_unavailable() -> None:
    def no_module():
        raise ImportError("No module named 'pynvml'")

    with _nvml.open_nvml(no_module) as nvml:
        assert isinstance(nvml, Unavailable) and "nvidia-ml-py is not installed" in nvml.reason


def test_session_shuts_down_even_when_shutdown_fails() -> None:
    events = []
    module = stand_in(nvmlShutdown=_nvml.ERROR_UNKNOWN)
    module.nvmlInit = lambda: events.append("init")
    with _nvml.open_nvml(lambda: module) as nvml:
        assert isinstance(nvml, _nvml.NvmlSession)
    assert events == ["init"]


def test_error_code_of_ignores_other_values() -> None:
    assert _nvml.error_code_of(Unavailable("something else")) is None
    assert _nvml.error_code_of(3) is None


def test_real_bindings_never_raise_here() -> None:
    with _nvml.open_nvml() as nvml:
        assert isinstance(nvml, (Unavailable, _nvml.NvmlSession))
        if isinstance(nvml, _nvml.NvmlSession):
            assert isinstance(nvml.query("nvmlDeviceGetCount"), (int, Unavailable))


def test_process_entries_become_dicts_and_handles_pass_through() -> None:
    class nvmlFriendlyObject:  # the name pynvml gives its process-info objects
        def __init__(self, **fields):
            self.__dict__.update(fields)

    handle = ctypes.pointer(ctypes.c_int(7))
    nvml = session(nvmlDeviceGetComputeRunningProcesses=lambda h: [nvmlFriendlyObject(pid=12, usedGpuMemory=None)],
                   nvmlDeviceGetHandleByIndex=lambda i: handle)
    assert nvml.query("nvmlDeviceGetComputeRunningProcesses", 0) == [{"pid": 12, "usedGpuMemory": None}]
    assert nvml.query("nvmlDeviceGetHandleByIndex", 0) is handle
