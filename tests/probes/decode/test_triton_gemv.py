"""The GEMV's launch rule: enough column slices for every multiprocessor, the tensor cores only for several rows."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("triton")

from dgprofile.probes.decode.triton_gemv import gemv_launch  # noqa: E402


@pytest.mark.parametrize("sms", [132, 114])  # H200, H100 SXM
def test_each_of_the_model_s_projections_gets_a_program_per_multiprocessor_in_two_tile_widths(sms):
    # q/k/v (sliding 8192, global 9216 columns), output and down (2816), dense GeGLU (2112), router (128).
    widths = {cols: gemv_launch(1, cols, sms).block_n for cols in (8192, 9216, 2816, 2112, 128)}
    assert widths == {8192: 32, 9216: 32, 2816: 16, 2112: 16, 128: 16}
    assert all(-(-cols // block) >= sms for cols, block in widths.items() if cols > 128)


def test_one_row_streams_on_cuda_cores_and_several_rows_on_the_tensor_cores():
    assert not gemv_launch(1, 2816, 132).use_dot
    assert all(gemv_launch(rows, 2816, 132).use_dot for rows in (2, 8, 16))
    with pytest.raises(ValueError, match="1 to 16 rows"):
        gemv_launch(17, 2816, 132)
