"""What `verify` learns about a server from outside the requests: its own timing per concurrency level (its
``/metrics``) and, when it runs on this machine, the GPU memory of its processes (NVML), read after every level
so the largest reading stands for the run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from dgprofile.app.verify.server import ServerTarget
from dgprofile.app.verify.server_metrics import (
    MetricsSnapshot,
    level_timing,
    read_after,
    read_metrics,
)
from dgprofile.probes.verify import server_processes
from dgprofile.probes.verify.server_processes import ServerProcess
from dgprofile.records.values import Unavailable
from dgprofile.records.verification import (
    ProcessGpuMemory,
    RequestRecord,
    ServerLevelTiming,
    ServerObservation,
)

MetricsReader = Callable[[], MetricsSnapshot | Unavailable]
MemoryReader = Callable[[tuple[ServerProcess, ...]], tuple[ProcessGpuMemory, ...] | Unavailable]
NOT_READ = Unavailable("no concurrency level finished")


def _port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def locate_processes(url: str) -> tuple[ServerProcess, ...] | Unavailable:
    """The server's processes when it runs on this machine, or why its memory cannot be read from here."""
    host = urlsplit(url).hostname or ""
    if not server_processes.is_this_host(host):
        return Unavailable(f"the server runs on another host ({host}): NVML sees this machine's GPUs only")
    return server_processes.server_processes(_port(url))


@dataclass
class ServerWatch:
    """One server's timing and memory, gathered level by level during the run."""

    target: ServerTarget
    processes: tuple[ServerProcess, ...] | Unavailable
    read_memory: MemoryReader = server_processes.read_gpu_memory
    levels: list[ServerLevelTiming] = field(default_factory=list)
    timing_absent: Unavailable = NOT_READ  # the first reason a level's timing could not be read
    memory: dict[tuple[int, int], ProcessGpuMemory] = field(default_factory=dict)
    memory_absent: Unavailable = NOT_READ

    @classmethod
    def start(cls, target: ServerTarget) -> ServerWatch:
        """Watch ``target``, its processes located now (before any request)."""
        return cls(target, locate_processes(target.root))

    def read_metrics(self) -> MetricsSnapshot | Unavailable:
        """The server's request histograms now (before a level: where its increments start)."""
        return read_metrics(self.target.root, self.target.served_model)

    def after_level(self, before: MetricsSnapshot | Unavailable, concurrency: int,
                    records: list[RequestRecord]) -> None:
        """Compare the level's increments with the client's ``records`` and read the processes' GPU memory."""
        after = (before if isinstance(before, Unavailable)
                 else read_after(self.read_metrics, before, sum(1 for r in records if not r.faults)))
        if isinstance(before, MetricsSnapshot) and isinstance(after, MetricsSnapshot):
            self.levels.append(level_timing(before, after, concurrency, records))
        elif isinstance(after, Unavailable) and self.timing_absent is NOT_READ:
            self.timing_absent = after
        self._read_memory()

    def _read_memory(self) -> None:
        if isinstance(self.processes, Unavailable):
            self.memory_absent = self.processes
            return
        reading = self.read_memory(self.processes)
        if isinstance(reading, Unavailable):
            self.memory_absent = reading
            return
        for process in reading:
            key = (process.pid, process.gpu_index)
            kept = self.memory.get(key)
            if kept is None or (isinstance(process.used_bytes, float) and (
                    isinstance(kept.used_bytes, Unavailable) or process.used_bytes > kept.used_bytes)):
                self.memory[key] = process

    def observation(self) -> ServerObservation:
        """What was gathered, as the measured run records it."""
        timing: tuple[ServerLevelTiming, ...] | Unavailable = tuple(self.levels) if self.levels else self.timing_absent
        held = tuple(self.memory[key] for key in sorted(self.memory))
        gpu_memory: tuple[ProcessGpuMemory, ...] | Unavailable = held if held else self.memory_absent
        known = [p.used_bytes for p in held if isinstance(p.used_bytes, float)]
        total: float | Unavailable
        if not held:
            total = self.memory_absent
        elif len(known) < len(held):
            total = Unavailable("NVML did not report every process's memory")
        else:
            total = sum(known)
        return ServerObservation(role=self.target.role, url=self.target.root, metrics_url=self.target.root + "/metrics",
                                 timing=timing, gpu_memory=gpu_memory, gpu_memory_bytes=total)
