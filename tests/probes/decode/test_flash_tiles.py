"""The flash-attention kernel's tiling: within an H100/H200's shared memory, and splitting the value columns only
where that fills idle SMs (no GPU needed: the choice is arithmetic)."""

from __future__ import annotations

import pytest

pytest.importorskip("triton")

from dgprofile.probes.decode.triton_flash_attention import (  # noqa: E402
    DEFAULT_TILES,
    MIN_VALUE_COLUMNS,
    flash_tiles,
)

HOPPER_SHARED_MEMORY_PER_BLOCK = 227 * 1024  # H100/H200, opted in (CUDA programming guide, compute capability 9.0)
H200_SMS = 132


@pytest.mark.parametrize("dim", sorted(DEFAULT_TILES))
def test_default_tiles_fit_hopper_shared_memory(dim):
    tiles = DEFAULT_TILES[dim]
    element = 2  # bf16/fp16
    q = tiles.block_rows * dim * element
    k_and_v = tiles.block_keys * (dim + tiles.value_columns) * element
    assert q + tiles.num_stages * k_and_v <= HOPPER_SHARED_MEMORY_PER_BLOCK


def test_sliding_layer_at_concurrency_one_splits_its_value_columns_to_fill_the_gpu():
    # 8 KV heads x (2 x 256 rows / 64) = 64 programs: two slices of 128 columns give 128 of 132 SMs work.
    assert flash_tiles(256, 2 * 256, 8, H200_SMS).value_columns == 128
    assert flash_tiles(256, 2 * 256, 8 * 8, H200_SMS).value_columns == 256  # concurrency 8: 512 programs


def test_global_layer_keeps_its_two_value_slices_at_every_concurrency():
    # 2 KV heads x (8 x 256 rows / 64) x 2 slices = 128 programs at concurrency 1: four slices would be 256, each
    # recomputing the scores over 512 columns, for SMs that are already busy.
    assert flash_tiles(512, 8 * 256, 2, H200_SMS).value_columns == 256
    assert flash_tiles(512, 8 * 24, 2 * 2, H200_SMS).value_columns == 256  # the small-shape check's launch


def test_value_columns_are_never_split_below_the_minimum():
    assert flash_tiles(256, 64, 1, H200_SMS).value_columns == MIN_VALUE_COLUMNS[256]


def test_small_head_dimensions_keep_the_whole_head_per_program():
    tiles = flash_tiles(32, 20, 2, 4)
    assert tiles.value_columns == 32 and tiles.block_rows == 16
