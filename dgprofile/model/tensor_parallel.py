"""The model's tensor-parallel terms checked against decoder layers measured split over several GPUs.

The model splits a pass's work evenly over the GPUs and adds its all-reduces over the link
(``dgprofile.model.speedup``: ``pass_body`` over ``gpus`` GPUs, ``layer_interconnect_seconds``). A measured split
layer (``TensorParallelLayer``) comes with the same layer timed whole on one GPU, so the prediction for it is
that time over the GPUs plus the all-reduces over the link the measured sweep shows, taken at the latency the
measurement paid (both were launched eagerly). A pass's layers are its sliding and global layers in the model's
proportion; the head (LM head and sampler) is not split in the measurement and is left out on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass

from dgprofile.model.setup import measured_interconnect
from dgprofile.model.speedup import layer_interconnect_seconds
from dgprofile.records.multi_gpu import MultiGpuRun, TensorParallelLayer
from dgprofile.records.predictions import Interconnect
from dgprofile.records.values import Unavailable
from dgprofile.specs.model_config import ModelConfig


@dataclass(frozen=True)
class SplitPassCheck:
    """A pass's decoder layers split over ``tensor_parallel`` GPUs: measured, predicted, and their parts."""

    tensor_parallel: int
    pass_kind: str
    concurrency: int
    layers: int
    single_gpu_seconds: float
    measured_seconds: float
    predicted_seconds: float
    interconnect_seconds: float

    @property
    def difference(self) -> float:
        """Predicted over measured, less one."""
        return self.predicted_seconds / self.measured_seconds - 1


def predicted_layer_seconds(layer: TensorParallelLayer, link: Interconnect, hidden_size: int) -> float:
    """The model's time of a split layer: the whole layer's over the GPUs, plus its all-reduces over the link."""
    return (layer.single_gpu_timing.median_seconds / layer.tensor_parallel
            + layer_interconnect_seconds(layer.tokens, layer.tensor_parallel, link, hidden_size))


def split_pass_checks(run: MultiGpuRun, config: ModelConfig, path: Interconnect | Unavailable
                      ) -> tuple[SplitPassCheck, ...] | Unavailable:
    """Every measured (GPUs, pass, concurrency) whose sliding and global layers were both split, predicted from
    the link the run's all-reduce sweep measured (``path``: the link NVML or the datasheet names)."""
    if isinstance(run.tensor_parallel_layers, Unavailable):
        return run.tensor_parallel_layers
    if isinstance(run.all_reduce, Unavailable):
        return Unavailable(f"no all-reduce sweep to predict the link from ({run.all_reduce.reason})")
    checks = []
    keys = dict.fromkeys((layer.tensor_parallel, layer.pass_kind, layer.concurrency)
                         for layer in run.tensor_parallel_layers)
    for size, kind, concurrency in keys:
        if size != run.all_reduce.world_size:  # a split over fewer GPUs than the sweep: its link is not measured
            continue
        link = measured_interconnect(run.all_reduce, path, "eager")  # as the layers ran
        if isinstance(link, Unavailable):
            return link
        layers = {layer.layer_type: layer for layer in run.tensor_parallel_layers
                  if (layer.tensor_parallel, layer.pass_kind, layer.concurrency) == (size, kind, concurrency)}
        if set(layers) != {"sliding", "global"}:
            continue
        counts = {layer_type: config.backbone.count_layers(layer_type) for layer_type in layers}
        hidden = config.backbone.hidden_size
        checks.append(SplitPassCheck(
            tensor_parallel=size, pass_kind=kind, concurrency=concurrency, layers=sum(counts.values()),
            single_gpu_seconds=sum(counts[t] * layer.single_gpu_timing.median_seconds for t, layer in layers.items()),
            measured_seconds=sum(counts[t] * layer.timing.median_seconds for t, layer in layers.items()),
            predicted_seconds=sum(counts[t] * predicted_layer_seconds(layer, link, hidden)
                                  for t, layer in layers.items()),
            interconnect_seconds=sum(counts[t] * layer_interconnect_seconds(layer.tokens, size, link, hidden)
                                     for t, layer in layers.items())))
    return tuple(checks)
