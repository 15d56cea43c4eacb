"""The expert GEMM's launch rule: tiles per block size and format, pipelines that fit the GPU's shared memory."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("triton")

from dgprofile.probes.decode.triton_moe import MAX_STAGES, expert_tiles, pipeline_depth  # noqa: E402

H200_SHARED_MEMORY = 232_448  # bytes a Triton program may use on an sm_90 GPU
ADA_SHARED_MEMORY = 101_376  # on an sm_89 GPU (RTX 4090, L40S)


def test_a_depth_tuned_on_an_h200_is_cut_to_what_fits_a_gpu_with_less_shared_memory():
    # fp8's down projection at the denoise pass (blocks of 32 rows) is tuned 4 steps deep: 24 KiB a step.
    tiles = expert_tiles(block_m=32, k_dim=704, fuse_geglu=False, fp8=True)
    shape = dict(block_m=32, weight_columns=tiles.block_n, block_k=tiles.block_k, element_bytes=1)
    assert tiles.num_stages == 4
    assert pipeline_depth(H200_SHARED_MEMORY, named=tiles.num_stages, **shape) == 4
    assert pipeline_depth(ADA_SHARED_MEMORY, named=tiles.num_stages, **shape) == 3


def test_an_unnamed_depth_is_the_deepest_that_fits_up_to_the_limit():
    bf16_gate_up = dict(block_m=32, weight_columns=2 * 64, block_k=128, element_bytes=2)  # 40 KiB a step
    assert pipeline_depth(H200_SHARED_MEMORY, **bf16_gate_up) == MAX_STAGES
    assert pipeline_depth(ADA_SHARED_MEMORY, **bf16_gate_up) == 2

