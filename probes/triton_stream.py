"""Hand-written Triton streaming kernels: the read bandwidth a weight-streaming decoder can hope for, and a copy.

Each program walks the buffer in a grid-stride loop with wide loads (``BLOCK`` fp32 per iteration, i.e. several
16-byte loads per thread in flight), bypassing L1 (``.cg``); the read writes one partial sum per program, the copy
stores with the streaming hint (``.cs``). The grid is sized to the multiprocessors, as nvbandwidth and BabelStream
do. Used where triton and a CUDA, ROCm or XPU device exist; torch and triton are imported lazily.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dgprofile.records.values import Unavailable


@dataclass(frozen=True)
class StreamConfig:
    """Launch shape: fp32 elements per program per iteration, warps per program, programs per multiprocessor."""

    block: int
    num_warps: int
    programs_per_sm: int

    @property
    def label(self) -> str:
        """How the method is named in results."""
        return f"block {self.block}, {self.num_warps} warps, {self.programs_per_sm}/SM"


# Tried in turn; the best is kept. The two fastest reads of a sweep (block 2048-16384, 4-16 warps, 1-16 programs
# per SM) on an H100 SXM with 2 GiB buffers: 94% of the NVML-theoretical bandwidth (16 or 32 fp32 per thread, i.e.
# four or eight 16-byte loads in flight per thread per iteration); 95.5% on an H200 with 1 GiB buffers. The copy
# kernel was not swept: on that H200 it reached 82% against torch's copy_ at 87%.
STREAM_CONFIGS = (StreamConfig(8192, 16, 16), StreamConfig(16384, 8, 8))


def triton_unavailable_reason(device: str) -> str | None:
    """Why the Triton kernel cannot run on ``device`` (None when it may: Triton has NVIDIA, AMD and Intel XPU
    backends, and a kernel that still fails to compile on one is caught by its caller)."""
    if not device.startswith(("cuda", "xpu")):
        return "the Triton kernel runs on CUDA, ROCm and XPU devices only"
    try:
        import triton  # noqa: F401
    except ImportError:
        return "triton is not installed"
    return None


@functools.cache
def _kernels() -> tuple[Any, Any]:
    import triton
    import triton.language as tl

    # The wrappers make n_elements a multiple of BLOCK, so no masks are needed.
    @triton.jit
    def stream_read_kernel(x_ptr, partial_ptr, n_elements, BLOCK: tl.constexpr):
        program = tl.program_id(0)
        programs = tl.num_programs(0)
        offsets = tl.arange(0, BLOCK)
        acc = tl.zeros([BLOCK], dtype=tl.float32)
        for start in range(program * BLOCK, n_elements, programs * BLOCK):
            acc += tl.load(x_ptr + start + offsets, cache_modifier=".cg")
        tl.store(partial_ptr + program, tl.sum(acc, axis=0))

    @triton.jit
    def stream_copy_kernel(src_ptr, dst_ptr, n_elements, BLOCK: tl.constexpr):
        program = tl.program_id(0)
        programs = tl.num_programs(0)
        offsets = tl.arange(0, BLOCK)
        for start in range(program * BLOCK, n_elements, programs * BLOCK):
            values = tl.load(src_ptr + start + offsets, cache_modifier=".cg")
            tl.store(dst_ptr + start + offsets, values, cache_modifier=".cs")

    return stream_read_kernel, stream_copy_kernel


def _programs(buffer: Any, *, sm_count: int, config: StreamConfig) -> int:
    """Grid size for ``buffer``, after checking the layout the kernels rely on."""
    import torch

    if buffer.dtype != torch.float32 or not buffer.is_contiguous():
        raise ValueError("the Triton streaming kernels need a contiguous float32 buffer")
    if buffer.numel() >= 2**31:
        raise ValueError("the Triton streaming kernels index with 32-bit offsets: use a smaller buffer")
    if buffer.numel() % config.block:
        raise ValueError(f"buffer length {buffer.numel()} is not a multiple of the block ({config.block})")
    return min(sm_count * config.programs_per_sm, int(buffer.numel()) // config.block)


def stream_read(buffer: Any, *, sm_count: int, config: StreamConfig) -> tuple[Callable[[], Any], int]:
    """A callable that reads every element of a contiguous fp32 CUDA ``buffer`` once and returns the partial sums.

    Returns the callable and the bytes it moves per call (the buffer read plus the partial sums written).
    """
    import torch

    programs = _programs(buffer, sm_count=sm_count, config=config)
    partials = torch.empty(programs, dtype=torch.float32, device=buffer.device)
    kernel, _ = _kernels()
    n_elements = buffer.numel()

    def run() -> Any:
        kernel[(programs,)](buffer, partials, n_elements, BLOCK=config.block, num_warps=config.num_warps)
        return partials

    return run, n_elements * buffer.element_size() + programs * partials.element_size()


def stream_copy(source: Any, destination: Any, *, sm_count: int, config: StreamConfig
                ) -> tuple[Callable[[], Any], int]:
    """A callable that copies the contiguous fp32 CUDA ``source`` into ``destination``; and the bytes per call."""
    if destination.shape != source.shape or destination.dtype != source.dtype or not destination.is_contiguous():
        raise ValueError("the Triton copy needs a contiguous destination shaped like its source")
    programs = _programs(source, sm_count=sm_count, config=config)
    _, kernel = _kernels()
    n_elements = source.numel()

    def run() -> Any:
        kernel[(programs,)](source, destination, n_elements, BLOCK=config.block, num_warps=config.num_warps)
        return destination

    return run, 2 * n_elements * source.element_size()


def stream_read_sum(buffer: Any, *, sm_count: int, config: StreamConfig) -> float | Unavailable:
    """The sum of ``buffer`` computed by the kernel (for correctness checks against torch)."""
    reason = triton_unavailable_reason(str(buffer.device))
    if reason:
        return Unavailable(reason)
    run, _ = stream_read(buffer, sm_count=sm_count, config=config)
    return float(run().double().sum())
