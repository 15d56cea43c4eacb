"""Software versions from metadata, torch's CUDA build without importing torch."""

from __future__ import annotations

import types

import pytest

from dgprofile.probes.env_software import SoftwareSeams, installed_version, probe_software
from dgprofile.values import Unavailable


def seams(versions: dict[str, str], *, requires: tuple[str, ...] = (), loaded: dict | None = None,
          os_name: str = "Linux") -> SoftwareSeams:
    return SoftwareSeams(version_of=lambda name: versions.get(name, Unavailable("not installed")),
                         requirements_of=lambda name: requires, loaded_modules=loaded or {}, os_name=os_name,
                         os_release="6.8.0", python_version="3.12.3")


@pytest.mark.parametrize(("version", "expected"), [("2.9.0+cu128", "12.8"), ("2.11.0+cu130", "13.0"),
                                                     ("2.4.1+cu118", "11.8")])
def test_cuda_from_version_tag(version: str, expected: str) -> None:
    assert probe_software(seams({"torch": version})).torch_cuda_version == expected


@pytest.mark.parametrize(("version", "words"), [("2.13.0+cpu", "CPU-only"), ("2.5.1+rocm6.2", "ROCm")])
def test_non_cuda_builds(version: str, words: str) -> None:
    value = probe_software(seams({"torch": version})).torch_cuda_version
    assert isinstance(value, Unavailable) and words in value.reason


def test_cuda_from_runtime_requirement() -> None:
    requires = ('sympy>=1.13.3', 'nvidia-cuda-runtime==13.0.96; platform_system == "Linux"')
    assert probe_software(seams({"torch": "2.11.0"}, requires=requires)).torch_cuda_version == "13.0"
    requires = ('nvidia-cuda-runtime-cu12==12.8.90; platform_system == "Linux" and platform_machine == "x86_64"',)
    assert probe_software(seams({"torch": "2.8.0"}, requires=requires)).torch_cuda_version == "12.8"


def test_untagged_torch_without_cuda_requirements() -> None:
    value = probe_software(seams({"torch": "2.11.0"})).torch_cuda_version
    assert isinstance(value, Unavailable) and "not imported" in value.reason


def test_imported_torch_is_asked_directly() -> None:
    torch = types.SimpleNamespace(version=types.SimpleNamespace(cuda="12.6"),
                                  backends=types.SimpleNamespace(mps=types.SimpleNamespace(is_available=lambda: True)))
    software = probe_software(seams({"torch": "2.11.0+cu130"}, loaded={"torch": torch}, os_name="Darwin"))
    assert software.torch_cuda_version == "12.6"
    assert software.torch_mps_available is True


def test_mps_off_macos_is_false_and_unknown_on_mac_without_import() -> None:
    assert probe_software(seams({"torch": "2.11.0"})).torch_mps_available is False
    value = probe_software(seams({"torch": "2.11.0"}, os_name="Darwin")).torch_mps_available
    assert isinstance(value, Unavailable)


def test_missing_packages_are_unavailable() -> None:
    software = probe_software(seams({"nvidia-ml-py": "13.580.82", "vllm": "0.24.1"}))
    assert software.vllm_version == "0.24.1" and software.nvidia_ml_py_version == "13.580.82"
    for value in (software.torch_version, software.torch_cuda_version, software.triton_version,
                  software.transformers_version):
        assert isinstance(value, Unavailable)
    assert software.python_version == "3.12.3"


def test_real_metadata() -> None:
    assert installed_version("click") != Unavailable("not installed")
    assert installed_version("surely-not-a-real-distribution-name") == Unavailable("not installed")


def test_probe_does_not_import_torch() -> None:
    import sys

    before = "torch" in sys.modules
    probe_software()
    assert ("torch" in sys.modules) == before
