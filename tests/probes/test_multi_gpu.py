"""The multi-GPU measurements on the CPU: real processes, real gloo collectives, tiny shapes."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import pytest
import torch
from fakes import multi_gpu as fake_gpus

from dgprofile.probes.decode.model import build_layer, decoder_layer, layer_state
from dgprofile.probes.decode.tensor_parallel import (
    shard_config,
    shard_layer,
    shard_state,
    tensor_parallel_layer,
)
from dgprofile.probes.harness import Budget
from dgprofile.probes.multi_gpu import CollectivePlan, limits_on_every_gpu, run_collectives
from dgprofile.probes.verify.plan import miniature_config
from dgprofile.records.multi_gpu import AllReduceSweep
from dgprofile.records.values import Unavailable
from dgprofile.specs.model_config import ModelConfig, load_model_config


def tiny_config() -> ModelConfig:
    """The miniature architecture with a 16-token canvas: every split of the real one, at toy sizes."""
    config = miniature_config(load_model_config())
    return dataclasses.replace(config, diffusion=dataclasses.replace(config.diffusion, canvas_length=16))


class ThreadAllReduce:
    """An all-reduce between threads standing in for ranks: each adds its part, all read the sum."""

    def __init__(self, ranks: int) -> None:
        self.parts: list[list[torch.Tensor]] = []
        self.barrier = threading.Barrier(ranks)
        self.lock = threading.Lock()
        self.rounds: dict[int, int] = {}

    def __call__(self, rank: int, tensor: torch.Tensor) -> torch.Tensor:
        call = self.rounds.get(rank, 0)
        self.rounds[rank] = call + 1
        with self.lock:
            while len(self.parts) <= call:
                self.parts.append([])
            self.parts[call].append(tensor.clone())
        self.barrier.wait()
        tensor.copy_(torch.stack(self.parts[call]).sum(0))
        self.barrier.wait()
        return tensor


@pytest.mark.parametrize("layer_type", ["sliding", "global"])
@pytest.mark.parametrize("kind,new", [("ar-step", 1), ("dg-denoise", 16)])
@pytest.mark.parametrize("size", [2, 4])
def test_split_layer_computes_what_the_whole_layer_does(layer_type: Any, kind: Any, new: int, size: int) -> None:
    """Heads, KV heads (split, or kept per rank where there are fewer than ranks), dense MLP and experts cut
    from one layer and summed by the two all-reduces give the one-GPU decoder layer's output."""
    config = tiny_config()
    torch.manual_seed(0)
    whole = build_layer(config, layer_type, dtype=torch.float32, fp8=False, device="cpu")
    state = layer_state(config, layer_type, kind=kind, concurrency=2, new=new, context=40, dtype=torch.float32,
                        device="cpu", generator=torch.Generator().manual_seed(0), expert_method="padded",
                        attention_method="sdpa" if layer_type == "sliding" else "matmul")
    x = torch.randn(2 * new, config.backbone.hidden_size)
    shards = [(shard_layer(config, whole, rank, size), shard_state(config, state, layer_type, rank, size))
              for rank in range(size)]
    expected = decoder_layer(config, x, whole, state, 2)
    reduce = ThreadAllReduce(size)
    outputs: dict[int, torch.Tensor] = {}

    def run(rank: int) -> None:
        part, part_state = shards[rank]
        outputs[rank] = tensor_parallel_layer(shard_config(config, size), x, part, part_state, 2,
                                              lambda t: reduce(rank, t))

    threads = [threading.Thread(target=run, args=(rank,)) for rank in range(size)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for rank in range(size):
        torch.testing.assert_close(outputs[rank], expected, rtol=1e-4, atol=1e-4)


def test_uneven_split_is_refused_with_what_does_not_divide() -> None:
    with pytest.raises(ValueError, match="attention heads 16"):
        shard_config(load_model_config(), 3)


def test_gloo_sweep_and_split_layers_over_two_processes() -> None:
    """Two real processes over gloo: every all-reduce size timed by the harness on both ranks alike, and each
    layer split in two beside the whole layer."""
    plan = CollectivePlan(concurrencies=(1, 2), layer_passes=(("ar-step", 1), ("dg-denoise", 1)),
                          config=tiny_config(), budget=Budget(0.001, 3, 0.05, 1), context_tokens=64)
    result = run_collectives(("cpu", "cpu"), plan, timeout_seconds=120)
    sweep = result.all_reduce
    assert isinstance(sweep, AllReduceSweep), sweep
    assert (sweep.backend, sweep.world_size, sweep.dtype, sweep.launch_mode) == ("gloo", 2, "bf16", "eager")
    assert [(p.message_kind, p.tokens) for p in sweep.points] == [
        ("ar-step", 1), ("ar-step", 2), ("canvas", 16), ("canvas", 32)]
    hidden = tiny_config().backbone.hidden_size
    for point in sweep.points:
        assert point.message_bytes == point.tokens * hidden * 2
        assert point.timing.samples >= 3 and point.timing.median_seconds > 0
        assert point.bus_bytes_per_s == pytest.approx(point.algorithm_bytes_per_s)  # 2 (n - 1) / n = 1 for n = 2
    layers = result.layers
    assert not isinstance(layers, Unavailable), layers
    assert {(layer.layer_type, layer.pass_kind, layer.tensor_parallel) for layer in layers} == {
        (t, k, 2) for t in ("sliding", "global") for k in ("ar-step", "dg-denoise")}
    denoise = next(layer for layer in layers if layer.pass_kind == "dg-denoise")
    assert (denoise.tokens, denoise.all_reduces, denoise.all_reduce_bytes) == (16, 2, 3 * 16 * hidden * 4)


def test_layers_that_cannot_be_split_leave_the_all_reduce_sweep_measured() -> None:
    # On a 2x H200 the split expert width (352) failed a Triton kernel on both ranks, and the sweep went with it.
    config = tiny_config()
    odd = dataclasses.replace(config, backbone=dataclasses.replace(config.backbone, intermediate_size=263))
    plan = CollectivePlan(concurrencies=(1,), config=odd, layer_types=("sliding",), layer_passes=(("ar-step", 1),),
                          budget=Budget(0.001, 3, 0.05, 1), context_tokens=64)
    result = run_collectives(("cpu", "cpu"), plan, timeout_seconds=120)
    assert isinstance(result.all_reduce, AllReduceSweep) and len(result.all_reduce.points) == 2
    assert isinstance(result.layers, Unavailable) and "dense MLP width 263" in result.layers.reason


def test_limits_are_measured_on_every_gpu_at_once_and_a_slow_card_shows() -> None:
    measured = limits_on_every_gpu(("cuda:0", "cuda:1"), machine=None, quick=True,
                                   measure_limits=fake_gpus.throttled_second_gpu, timeout_seconds=120)
    assert [(m.gpu_index, m.device) for m in measured] == [(0, "cuda:0"), (1, "cuda:1")]
    first, second = (m.limits for m in measured)
    assert not isinstance(first, Unavailable) and not isinstance(second, Unavailable)
    assert second.stream_read_bytes_per_s == pytest.approx(first.stream_read_bytes_per_s * 0.8)
    starts = [float(m.notes[0].split()[-1]) for m in (first, second)]
    assert abs(starts[0] - starts[1]) < 1.0  # the barrier released both together


def test_a_gpu_whose_limits_fail_leaves_every_gpu_unavailable_with_the_error() -> None:
    measured = limits_on_every_gpu(("cuda:0", "cuda:1"), machine=None, quick=True,
                                   measure_limits=fake_gpus.failing_gpu, timeout_seconds=120)
    assert all(isinstance(m.limits, Unavailable) and "illegal memory access" in m.limits.reason for m in measured)


@pytest.mark.gpu
def test_the_second_gpus_launch_floor_is_measured_on_that_gpu() -> None:
    # Its limits process captured the CUDA-graph latency op on GPU 0's stream: an empty graph, timed at 17 ps.
    import torch

    from dgprofile.probes.measure_limits import measure_limits

    if torch.cuda.device_count() < 2:
        pytest.skip("needs two CUDA GPUs")
    limits = measure_limits("cuda:1", quick=True)
    assert isinstance(limits.launch_floor_seconds, float) and limits.launch_floor_seconds > 0.2e-6
