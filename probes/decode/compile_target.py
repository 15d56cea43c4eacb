"""The GPU a compile-only process compiles Triton kernels for (``precompile.py``), without touching that GPU.

Such a process runs the benchmark's code on torch's ``meta`` device (shapes, no data, no GPU) with every Triton
launch turned into a compilation. Where launch parameters depend on the GPU (multiprocessor count, shared memory
per block), the kernel wrappers read them from here for ``meta`` tensors, so they pick the parameters, and Triton
the cache keys, that the real run on that GPU picks.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CompileTarget:
    """What the wrappers need to know of the GPU being compiled for."""

    capability: int  # e.g. 90 for sm_90
    multiprocessors: int
    shared_memory_per_block_bytes: int


_target: list[CompileTarget] = []


def set_compile_target(target: CompileTarget) -> None:
    """Compile for ``target`` in this process (a compile-only worker calls this once, first)."""
    _target[:] = [target]


def compile_target() -> CompileTarget:
    """The GPU this compile-only process compiles for; a meta tensor anywhere else is a bug."""
    if not _target:
        raise RuntimeError("meta tensors reach a Triton wrapper only in a compile-only process")
    return _target[0]
