"""The processes behind a server on this machine, and the GPU memory each holds according to NVML.

A server URL whose host is this machine (loopback, one of its addresses, or its name) is traced to the
processes listening on its port and all their descendants (vLLM runs its API server, engine core and workers as
separate processes; the GPU memory belongs to the workers). NVML's running-compute-process list
(``nvmlDeviceGetComputeRunningProcesses``: pid, usedGpuMemory, gpuInstanceId, computeInstanceId) then says what each
of them holds on each GPU. NVML names processes by the host's pids, so a server inside a container with its own
pid namespace is not found there: the reason says so.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from dgprofile.probes import _nvml
from dgprofile.records.values import Unavailable
from dgprofile.records.verification import ProcessGpuMemory

NvmlOpener = Callable[[], AbstractContextManager[_nvml.NvmlQuery | Unavailable]]


@dataclass(frozen=True)
class ServerProcess:
    """One process of a server: its pid and executable name."""

    pid: int
    name: str


def _local_addresses() -> set[str]:
    import psutil

    return {address.address.split("%")[0] for addresses in psutil.net_if_addrs().values()
            for address in addresses if address.family in (socket.AF_INET, socket.AF_INET6)}


def is_this_host(host: str) -> bool:
    """Whether ``host`` (a URL's host: a name or an address) is this machine."""
    host = host.strip("[]").lower()
    if host in ("localhost", socket.gethostname().lower(), socket.getfqdn().lower()):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        try:  # a name: this host when it resolves to one of this machine's addresses
            resolved = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
        except OSError:
            return False
        return any(is_this_host(found) for found in resolved)
    return address.is_loopback or address.is_unspecified or str(address) in _local_addresses()


def server_processes(port: int) -> tuple[ServerProcess, ...] | Unavailable:
    """The processes listening on ``port`` on this machine and all their descendants, or why none are known."""
    import psutil

    try:
        listening = [c for c in psutil.net_connections(kind="inet")
                     if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port]
    except psutil.AccessDenied:
        return Unavailable("listing this machine's sockets is not permitted for this user (psutil: access denied)")
    if not listening:
        return Unavailable(f"no process listens on port {port} here")
    pids = {c.pid for c in listening if c.pid is not None}
    if not pids:
        return Unavailable(f"the process listening on port {port} belongs to another user (run as that user or "
                           "as root)")
    found: dict[int, ServerProcess] = {}
    for pid in sorted(pids):
        try:
            parent = psutil.Process(pid)
            for process in (parent, *parent.children(recursive=True)):
                found.setdefault(process.pid, ServerProcess(process.pid, process.name()))
        except psutil.Error:  # it exited between the socket list and now; its siblings still count
            continue
    if not found:
        return Unavailable(f"the process listening on port {port} exited")
    return tuple(found[pid] for pid in sorted(found))


def gpu_memory_of(nvml: _nvml.NvmlQuery, processes: tuple[ServerProcess, ...]
                  ) -> tuple[ProcessGpuMemory, ...] | Unavailable:
    """What NVML's running-compute-process list says each of ``processes`` holds, per GPU."""
    names = {process.pid: process.name for process in processes}
    count = nvml.query("nvmlDeviceGetCount")
    if isinstance(count, Unavailable):
        return count
    held: list[ProcessGpuMemory] = []
    others = 0
    refusals: list[str] = []
    try:
        for index in range(count):
            handle = nvml.query("nvmlDeviceGetHandleByIndex", index)
            running = (handle if isinstance(handle, Unavailable)
                       else nvml.query("nvmlDeviceGetComputeRunningProcesses", handle))
            if isinstance(running, Unavailable):
                refusals.append(f"GPU {index}: {running.reason}")
                continue
            for entry in running:
                pid = entry["pid"]
                if pid not in names:
                    others += 1
                    continue
                used = _nvml.process_used_memory_bytes(entry)
                held.append(ProcessGpuMemory(pid=pid, process_name=names[pid], gpu_index=index,
                                             used_bytes=used if isinstance(used, Unavailable) else float(used)))
    except _nvml.DeviceLostError as exc:
        return Unavailable(f"a GPU stopped answering: {exc}")
    if held:
        return tuple(held)
    if refusals:
        return Unavailable("NVML refused the running-process list: " + "; ".join(refusals))
    pids = ", ".join(str(pid) for pid in sorted(names))
    if others:
        return Unavailable(f"none of the server's processes (pids {pids}) is among the {others} that NVML lists on "
                           "the GPUs: the server runs on no NVIDIA GPU, or in another pid namespace (a container)")
    return Unavailable(f"no process runs on the {count} NVIDIA GPU(s): the server (pids {pids}) uses none")


def read_gpu_memory(processes: tuple[ServerProcess, ...], *, open_session: NvmlOpener = _nvml.open_nvml
                    ) -> tuple[ProcessGpuMemory, ...] | Unavailable:
    """``gpu_memory_of`` through a fresh NVML session; ``open_session`` is the seam tests replace."""
    with open_session() as session:
        if isinstance(session, Unavailable):
            return Unavailable(f"no NVIDIA GPU to read: {session.reason}")
        return gpu_memory_of(session, processes)
