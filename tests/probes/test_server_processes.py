"""The processes behind a server on this machine (a real listening process tree) and their GPU memory (the NVML
fakes, one of them NVML's real answer on an H200)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from contextlib import contextmanager

import psutil
import pytest
from fakes import nvml as fake

from dgprofile.probes import _nvml
from dgprofile.probes.verify import server_processes as sp
from dgprofile.probes.verify.server_processes import ServerProcess
from dgprofile.records.values import Unavailable

# A listener that starts a child, as vLLM's API server starts its engine core (the child holds the GPU).
LISTENER = """
import socket, subprocess, sys, time
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen()
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print(server.getsockname()[1], child.pid, flush=True)
time.sleep(60)
"""

SERVER = (ServerProcess(495, "python3"), ServerProcess(496, "VLLM::EngineCore"))


@contextmanager
def listening_tree():
    process = subprocess.Popen([sys.executable, "-c", LISTENER], stdout=subprocess.PIPE, text=True)
    try:
        port, child = (int(word) for word in process.stdout.readline().split())
        yield port, process.pid, child
    finally:
        for descendant in psutil.Process(process.pid).children(recursive=True):
            descendant.kill()
        process.kill()
        process.wait()
        process.stdout.close()


def test_the_listening_process_and_its_children_are_the_server():
    with listening_tree() as (port, listener, child):
        deadline = time.monotonic() + 10
        found = sp.server_processes(port)
        while isinstance(found, tuple) and len(found) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # the child may still be starting
            found = sp.server_processes(port)
        assert isinstance(found, tuple)
        assert {p.pid for p in found} == {listener, child}
        assert all(p.name for p in found)


def test_a_port_nobody_listens_on_has_no_server():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening
        found = sp.server_processes(port)
    assert isinstance(found, Unavailable) and f"no process listens on port {port}" in found.reason


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "[::1]", "0.0.0.0", socket.gethostname()])
def test_loopback_and_this_hosts_name_are_this_host(host):
    assert sp.is_this_host(host)


def test_an_address_of_another_machine_is_not_this_host():
    assert not sp.is_this_host("203.0.113.7")  # TEST-NET-3 (RFC 5737): never assigned to a machine


def test_nvml_memory_of_the_server_worker_on_an_h200():
    (held,) = sp.gpu_memory_of(fake.h200_serving(), SERVER)
    assert (held.pid, held.process_name, held.gpu_index, held.used_bytes) == (
        496, "VLLM::EngineCore", 0, 1616904192.0)


def test_a_process_nvml_reports_no_memory_for_keeps_the_reason():
    nvml = fake.h200_serving()
    nvml.gpus[0].answers["nvmlDeviceGetComputeRunningProcesses"][0]["usedGpuMemory"] = None
    (held,) = sp.gpu_memory_of(nvml, SERVER)
    assert isinstance(held.used_bytes, Unavailable) and "WDDM" in held.used_bytes.reason


def test_a_server_in_another_pid_namespace_is_not_found_among_nvmls_processes():
    found = sp.gpu_memory_of(fake.h200_serving(), (ServerProcess(12, "python3"), ServerProcess(40, "python3")))
    assert isinstance(found, Unavailable)
    assert "pids 12, 40" in found.reason and "another pid namespace" in found.reason


def test_a_gpu_without_processes_says_the_server_uses_none():
    found = sp.gpu_memory_of(fake.h200(), SERVER)
    assert isinstance(found, Unavailable) and "the server (pids 495, 496) uses none" in found.reason


def test_nvml_refusing_the_process_list_under_mig_says_so():
    found = sp.gpu_memory_of(fake.mig_enabled(), SERVER)
    assert isinstance(found, Unavailable)
    assert found.reason.startswith("NVML refused the running-process list: GPU 0: ")
    assert "NVML_ERROR_NO_PERMISSION" in found.reason


def test_a_gpu_lost_while_reading_processes_is_unavailable():
    nvml = fake.h200_serving()
    nvml.gpus[0].lost_at = "nvmlDeviceGetComputeRunningProcesses"
    found = sp.gpu_memory_of(nvml, SERVER)
    assert isinstance(found, Unavailable) and "NVML_ERROR_GPU_IS_LOST" in found.reason


def test_without_nvml_there_is_no_gpu_to_read():
    @contextmanager
    def no_library():
        yield _nvml.unavailable_for(_nvml.ERROR_LIBRARY_NOT_FOUND, "NVML init")

    found = sp.read_gpu_memory(SERVER, open_session=no_library)
    assert isinstance(found, Unavailable)
    assert found.reason.startswith("no NVIDIA GPU to read: NVML init: the NVML library")


def test_read_gpu_memory_opens_a_session_and_reads_through_it():
    @contextmanager
    def h200():
        yield fake.h200_serving()

    (held,) = sp.read_gpu_memory(SERVER, open_session=h200)
    assert held.used_bytes == 1616904192.0
