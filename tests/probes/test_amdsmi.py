"""The amdsmi seam: initialisation, errors as reasons, lost devices, and a missing library that prints."""

from __future__ import annotations

import enum
import sys
import types

import pytest

from dgprofile.probes import _amdsmi
from dgprofile.records.values import Unavailable


class AmdSmiLibraryException(Exception):
    """As in amdsmi_exception.py: carries the status as err_code."""

    def __init__(self, err_code: int) -> None:
        super().__init__(err_code)
        self.err_code = err_code

    def get_error_code(self) -> int:
        return self.err_code


class AmdSmiMemoryType(enum.IntEnum):
    VRAM = 0
    VIS_VRAM = 1
    GTT = 2


class AmdSmiInitFlags(enum.IntEnum):
    INIT_AMD_GPUS = 2


def fake_module(*, init_status: int | None = None, memory: dict | None = None) -> types.SimpleNamespace:
    calls: list[str] = []

    def amdsmi_init(flag):
        assert flag is AmdSmiInitFlags.INIT_AMD_GPUS  # the session passes the bindings' own enum members
        calls.append("init")
        if init_status is not None:
            raise AmdSmiLibraryException(init_status)

    def amdsmi_get_gpu_memory_total(handle, mem_type):
        assert isinstance(mem_type, AmdSmiMemoryType)
        answer = (memory or {}).get(mem_type.name)
        if isinstance(answer, int) and answer < 0:
            raise AmdSmiLibraryException(-answer)
        return answer

    return types.SimpleNamespace(
        AmdSmiLibraryException=AmdSmiLibraryException, AmdSmiMemoryType=AmdSmiMemoryType,
        AmdSmiInitFlags=AmdSmiInitFlags, amdsmi_init=amdsmi_init,
        amdsmi_shut_down=lambda: calls.append("shut down"),
        amdsmi_get_gpu_memory_total=amdsmi_get_gpu_memory_total, calls=calls)


def test_queries_pass_enum_members_and_shut_down_after() -> None:
    module = fake_module(memory={"GTT": 64 << 30})
    with _amdsmi.open_amdsmi(lambda: module) as smi:
        assert isinstance(smi, _amdsmi.AmdSmiSession)
        assert smi.query("amdsmi_get_gpu_memory_total", object(), _amdsmi.MEMORY_GTT) == 64 << 30
    assert module.calls == ["init", "shut down"]


def test_errors_become_reasons_and_fatal_ones_raise() -> None:
    module = fake_module(memory={"VRAM": -_amdsmi.STATUS_NOT_SUPPORTED, "GTT": -_amdsmi.STATUS_NOT_FOUND})
    with _amdsmi.open_amdsmi(lambda: module) as smi:
        assert isinstance(smi, _amdsmi.AmdSmiSession)
        value = smi.query("amdsmi_get_gpu_memory_total", object(), _amdsmi.MEMORY_VRAM)
        assert isinstance(value, Unavailable) and value.reason.endswith("(AMDSMI_STATUS_NOT_SUPPORTED)")
        assert _amdsmi.status_of(value) == _amdsmi.STATUS_NOT_SUPPORTED
        with pytest.raises(_amdsmi.DeviceLostError, match="no longer present"):
            smi.query("amdsmi_get_gpu_memory_total", object(), _amdsmi.MEMORY_GTT)
        missing = smi.query("amdsmi_get_gpu_vram_info", object())
        assert isinstance(missing, Unavailable) and "too old" in missing.reason


def test_driver_missing_is_a_reason() -> None:
    module = fake_module(init_status=_amdsmi.STATUS_DRIVER_NOT_LOADED)
    with _amdsmi.open_amdsmi(lambda: module) as smi:
        assert isinstance(smi, Unavailable)
        assert "the amdgpu kernel driver is not loaded" in smi.reason
    assert module.calls == ["init"]


def test_bindings_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "amdsmi", None)  # makes `import amdsmi` raise ImportError
    with _amdsmi.open_amdsmi() as smi:
        assert isinstance(smi, Unavailable) and "not installed" in smi.reason


def test_bindings_without_the_library_print_nothing(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """The wrapper prints "Unable to find libamd_smi.so" and then fails with a KeyError: `probe --json` must
    stay valid JSON."""
    class Finder:
        def find_spec(self, name, path=None, target=None):
            if name != "amdsmi":
                return None
            import importlib.machinery
            return importlib.machinery.ModuleSpec(name, Loader())

    class Loader:
        def create_module(self, spec):
            return None

        def exec_module(self, module):
            print("Could not load libamd_smi.so")
            print("Unable to find libamd_smi.so library try installing amd-smi-lib from your package manager")
            raise KeyError("libamd_smi.so")

    monkeypatch.delitem(sys.modules, "amdsmi", raising=False)
    monkeypatch.setattr(sys, "meta_path", [Finder(), *sys.meta_path])
    with _amdsmi.open_amdsmi() as smi:
        assert isinstance(smi, Unavailable) and "libamd_smi.so could not be loaded" in smi.reason
    assert capsys.readouterr().out == ""
