"""The model's tensor-parallel terms checked against decoder layers measured split over several GPUs.

A measured split layer (``TensorParallelLayer``) comes with the same layer timed whole on one GPU. The prediction
for it: the whole layer's time with its roofline work (bytes and FLOPs at the GPU's measured rates) shared out
over the GPUs and the rest (kernels' latency) kept whole, plus the all-reduces over the link the measured sweep
shows (``dgprofile.model.speedup.layer_interconnect_seconds``, the model's interconnect term), that sweep
launched as the layers were (replayed from CUDA graphs on GPUs, as engines run decode passes; eagerly where
capture failed). A pass's layers are its sliding and global layers in the model's proportion; the head (LM head
and sampler) is not split in the measurement and is left out on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass

from dgprofile.model.setup import measured_interconnect, measured_sweeps, sweep_for_mode
from dgprofile.model.speedup import layer_interconnect_seconds
from dgprofile.records.limits import Limits
from dgprofile.records.multi_gpu import AllReduceSweep, LaunchMode, MultiGpuRun, TensorParallelLayer
from dgprofile.records.predictions import ExecutionMode, Interconnect
from dgprofile.records.values import Unavailable
from dgprofile.specs.model_config import ModelConfig
from dgprofile.specs.pass_cost import layer_cost, pass_shape, precision_by_name


@dataclass(frozen=True)
class SplitPassCheck:
    """A pass's decoder layers split over ``tensor_parallel`` GPUs: measured, predicted, and their parts."""

    tensor_parallel: int
    pass_kind: str
    concurrency: int
    layers: int
    launch_mode: LaunchMode  # how the layers ran, and the all-reduces the prediction takes the link from
    single_gpu_seconds: float
    roofline_seconds: float  # the layers' roofline floor on one GPU: the work the split shares out
    measured_seconds: float
    predicted_seconds: float
    interconnect_seconds: float

    @property
    def difference(self) -> float:
        """Predicted over measured, less one."""
        return self.predicted_seconds / self.measured_seconds - 1


def layer_roofline_seconds(config: ModelConfig, layer: TensorParallelLayer, limits: Limits) -> float:
    """The whole layer's roofline floor on one GPU at its measured streaming read and bf16 matmul rate: each
    component at the larger of its bytes and FLOPs time (``CostTerms.roofline_seconds``), summed."""
    shape = pass_shape(config, kind=layer.pass_kind, concurrency=layer.concurrency,
                       context_tokens=layer.context_tokens)
    read, rate = limits.stream_read_bytes_per_s, limits.peak_flops_per_s.get("bf16", 0.0)
    if isinstance(read, Unavailable) or rate <= 0:
        raise ValueError("the GPU's streaming read and bf16 matmul rate were not both measured")
    return sum(terms.roofline_seconds(bytes_per_s=read, matmul_flops_per_s=rate, wide_flops_per_s=rate)
               for terms in layer_cost(config, layer.layer_type, shape, precision_by_name("bf16")).values())


def predicted_layer_seconds(layer: TensorParallelLayer, link: Interconnect, hidden_size: int,
                            roofline_seconds: float) -> float:
    """The model's time of a split layer: the whole layer's, less the share of its roofline work the other GPUs
    take, plus its all-reduces over the link. What the whole layer takes above its roofline is kernels' latency
    (launches, short dependent kernels), which a split does not shorten: on an H200 one GPU's shard of an AR step's
    sliding layer took 95 us against the whole layer's 111 us, its roofline 46 us."""
    work = min(roofline_seconds, layer.single_gpu_timing.median_seconds)
    return (layer.single_gpu_timing.median_seconds - work * (1 - 1 / layer.tensor_parallel)
            + layer_interconnect_seconds(layer.tokens, layer.tensor_parallel, link, hidden_size))


def split_pass_checks(run: MultiGpuRun, config: ModelConfig, path: Interconnect | Unavailable
                      ) -> tuple[SplitPassCheck, ...] | Unavailable:
    """Every measured (GPUs, pass, concurrency) whose sliding and global layers were both split, predicted from
    the link the run's all-reduce sweep launched as the layers were (eagerly, or replayed from CUDA graphs)
    measured (``path``: the link NVML or the datasheet names)."""
    if isinstance(run.tensor_parallel_layers, Unavailable):
        return run.tensor_parallel_layers
    first = run.per_gpu_limits[0].limits if not isinstance(run.per_gpu_limits, Unavailable) else run.per_gpu_limits
    if isinstance(first, Unavailable):
        return Unavailable(f"no limits of the GPU the whole layers ran on, to set their roofline ({first.reason})")
    sweeps = measured_sweeps(run)
    if not sweeps:
        return Unavailable(f"no all-reduce sweep to predict the link from ({_reason(run.all_reduce)})")
    checks = []
    keys = dict.fromkeys((layer.tensor_parallel, layer.pass_kind, layer.concurrency)
                         for layer in run.tensor_parallel_layers)
    for size, kind, concurrency in keys:
        layers = {layer.layer_type: layer for layer in run.tensor_parallel_layers
                  if (layer.tensor_parallel, layer.pass_kind, layer.concurrency) == (size, kind, concurrency)}
        if set(layers) != {"sliding", "global"}:
            continue
        mode: ExecutionMode = ("cuda-graphs" if all(layer.launch_mode == "cuda-graph" for layer in layers.values())
                               else "eager")
        # A split over fewer GPUs than the sweep's has no measured link.
        sweep = sweep_for_mode([s for s in sweeps if s.world_size == size], mode)
        if sweep is None:
            continue
        link = measured_interconnect(sweep, path, mode)  # as the layers ran
        if isinstance(link, Unavailable):
            return link
        counts = {layer_type: config.backbone.count_layers(layer_type) for layer_type in layers}
        hidden = config.backbone.hidden_size
        try:
            roofline = {t: layer_roofline_seconds(config, layer, first) for t, layer in layers.items()}
        except ValueError as exc:
            return Unavailable(f"no roofline for the layers: {exc}")
        checks.append(SplitPassCheck(
            tensor_parallel=size, pass_kind=kind, concurrency=concurrency, layers=sum(counts.values()),
            launch_mode="cuda-graph" if mode == "cuda-graphs" else "eager",
            single_gpu_seconds=sum(counts[t] * layer.single_gpu_timing.median_seconds for t, layer in layers.items()),
            roofline_seconds=sum(counts[t] * roofline[t] for t in layers),
            measured_seconds=sum(counts[t] * layer.timing.median_seconds for t, layer in layers.items()),
            predicted_seconds=sum(counts[t] * predicted_layer_seconds(layer, link, hidden, roofline[t])
                                  for t, layer in layers.items()),
            interconnect_seconds=sum(counts[t] * layer_interconnect_seconds(layer.tokens, size, link, hidden)
                                     for t, layer in layers.items())))
    return tuple(checks)


def _reason(sweep: AllReduceSweep | Unavailable) -> str:
    return sweep.reason if isinstance(sweep, Unavailable) else "measured"
