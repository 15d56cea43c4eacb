"""A result of `check --gpus 2` on the recorded 2 x H200 NVLink pair, for the page tests (structural and browser)."""

from __future__ import annotations

import dataclasses

import result_factory as factory

from dgprofile.app.predictor import PredictOptions, predict_for_machine
from dgprofile.probes.gpu_nvidia import probe_nvidia
from dgprofile.records.multi_gpu import GpuLimits, MultiGpuRun
from dgprofile.records.results import ResultFile
from dgprofile.specs.model_config import load_model_config
from fakes import nvml as fake
from fakes import recorded_all_reduce as recorded


def h200_pair_result(**run_changes: object) -> ResultFile:
    """The pair's result: both GPUs' limits (the second slower), the recorded all-reduce sweeps (eager and replayed
    from CUDA graphs) and split layers."""
    devices = probe_nvidia(fake.h200_nvlink_pair(), read_host_meminfo=lambda: {"MemTotal": 2**38,
                                                                              "MemAvailable": 2**37},
                           own_pid=1).devices
    machine = factory.machine(accelerators=devices)
    layers = recorded.h200_pair_split_layers()
    run = MultiGpuRun(gpu_indices=(0, 1), backend="nccl",
                      per_gpu_limits=(GpuLimits(0, "cuda:0", factory.limits(device="cuda:0", stream_bytes_per_s=4.5e12)),
                                      GpuLimits(1, "cuda:1", factory.limits(device="cuda:1", stream_bytes_per_s=3.6e12))),
                      all_reduce=recorded.h200_pair_sweep(),
                      all_reduce_in_graphs=recorded.h200_pair_graph_sweep(), tensor_parallel_layers=layers,
                      model_id=load_model_config().id, seconds_taken=40.0)
    run = dataclasses.replace(run, **run_changes)
    predictions = predict_for_machine(machine, factory.limits(), factory.passes(), options=PredictOptions(gpus=2),
                                      multi_gpu=run)
    return dataclasses.replace(factory.result(machine_=machine, predictions_=predictions), multi_gpu=run)
