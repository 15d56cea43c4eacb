"""Software versions from metadata, torch's CUDA build without importing torch."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

from dgprofile.probes.env_software import SoftwareSeams, installed_version, probe_software
from dgprofile.records.values import Unavailable


def seams(versions: dict[str, str], *, requires: tuple[str, ...] = (), loaded: dict | None = None,
          os_name: str = "Linux", version_file: str | None = None) -> SoftwareSeams:
    return SoftwareSeams(version_of=lambda name: versions.get(name, Unavailable("not installed")),
                         requirements_of=lambda name: requires, read_torch_version_file=lambda: version_file,
                         loaded_modules=loaded or {}, os_name=os_name, os_release="6.8.0", python_version="3.12.3")


# torch/version.py as torch 2.11.0+cu130 (on the lent H100) and 2.13.0+cpu (this machine) ship it.
CUDA_VERSION_FILE = """from typing import Optional

__all__ = ['__version__', 'debug', 'cuda', 'git_version', 'hip', 'xpu']
__version__ = '2.11.0+cu130'
debug = False
cuda: Optional[str] = '13.0'
hip: Optional[str] = None
"""
CPU_VERSION_FILE = CUDA_VERSION_FILE.replace("'2.11.0+cu130'", "'2.13.0+cpu'").replace("'13.0'", "None")
ROCM_VERSION_FILE = CPU_VERSION_FILE.replace("hip: Optional[str] = None", "hip: Optional[str] = '6.2.41133'")


def test_cuda_from_version_file_when_metadata_drops_the_tag() -> None:
    # PyPI's torch 2.11.0+cu130 reports plain "2.11.0" in its metadata (seen on the lent H100).
    assert probe_software(seams({"torch": "2.11.0"}, version_file=CUDA_VERSION_FILE)).torch_cuda_version == "13.0"


@pytest.mark.parametrize(("text", "words"), [(CPU_VERSION_FILE, "CPU-only"), (ROCM_VERSION_FILE, "HIP 6.2.41133")])
def test_version_file_without_cuda(text: str, words: str) -> None:
    value = probe_software(seams({"torch": "2.11.0"}, version_file=text)).torch_cuda_version
    assert isinstance(value, Unavailable) and words in value.reason


@pytest.mark.parametrize(("version", "expected"), [("2.9.0+cu128", "12.8"), ("2.11.0+cu130", "13.0"),
                                                     ("2.4.1+cu118", "11.8")])
def test_cuda_from_version_tag(version: str, expected: str) -> None:
    assert probe_software(seams({"torch": version})).torch_cuda_version == expected


@pytest.mark.parametrize(("version", "words"), [("2.13.0+cpu", "CPU-only"), ("2.5.1+rocm6.2", "ROCm"),
                                                  ("2.9.0+xpu", "XPU build")])
def test_non_cuda_builds(version: str, words: str) -> None:
    value = probe_software(seams({"torch": version})).torch_cuda_version
    assert isinstance(value, Unavailable) and words in value.reason


def test_cuda_from_runtime_requirement() -> None:
    # torch 2.11.0's own requirement line, as read on the lent H100.
    requires = ('sympy>=1.13.3', 'cuda-toolkit[cublas,cudart,cufft,cufile,cupti,curand,cusolver,cusparse,nvjitlink,'
                'nvrtc,nvtx]==13.0.2; platform_system == "Linux"', 'nvidia-nccl-cu13==2.28.9; platform_system == "Linux"')
    assert probe_software(seams({"torch": "2.11.0"}, requires=requires)).torch_cuda_version == "13.0"
    requires = ('nvidia-cuda-runtime-cu12==12.8.90; platform_system == "Linux" and platform_machine == "x86_64"',)
    assert probe_software(seams({"torch": "2.8.0"}, requires=requires)).torch_cuda_version == "12.8"


def test_untagged_torch_without_cuda_requirements() -> None:
    value = probe_software(seams({"torch": "2.11.0"})).torch_cuda_version
    assert isinstance(value, Unavailable) and "not imported" in value.reason


def test_imported_rocm_torch_says_it_is_rocm() -> None:
    torch = types.SimpleNamespace(version=types.SimpleNamespace(cuda=None, hip="6.4.43482"))
    value = probe_software(seams({"torch": "2.9.0"}, loaded={"torch": torch})).torch_cuda_version
    assert isinstance(value, Unavailable) and "ROCm build of torch (HIP 6.4.43482)" in value.reason


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


def in_fresh_interpreter(code: str) -> str:
    """Run ``code`` in a new Python, where torch is not imported yet (in the test process another test has)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_real_version_file_is_read_without_import() -> None:
    out = in_fresh_interpreter(
        "import sys\n"
        "from dgprofile.probes.env_software import torch_version_file\n"
        "text = torch_version_file()\n"
        "print('torch' in sys.modules, text is not None and '__version__' in text)")
    installed = not isinstance(installed_version("torch"), Unavailable)
    assert out == f"False {installed}"


def test_real_metadata() -> None:
    assert installed_version("click") != Unavailable("not installed")
    assert installed_version("surely-not-a-real-distribution-name") == Unavailable("not installed")


def test_probe_does_not_import_torch() -> None:
    out = in_fresh_interpreter("import sys\n"
                               "from dgprofile.probes.env_software import probe_software\n"
                               "probe_software()\n"
                               "print('torch' in sys.modules)")
    assert out == "False"
