"""The link term from a measured all-reduce sweep, and the model's split passes against measured split layers."""

from __future__ import annotations

import dataclasses

import pytest
import result_factory as factory
from fakes import nvml as fake
from fakes import recorded_all_reduce as recorded

from dgprofile.app.predictor import PredictOptions, predict_for_machine
from dgprofile.model import setup
from dgprofile.model.tensor_parallel import layer_roofline_seconds, split_pass_checks
from dgprofile.probes.gpu_nvidia import probe_nvidia
from dgprofile.records.multi_gpu import GpuLimits, MultiGpuRun
from dgprofile.records.predictions import Interconnect
from dgprofile.records.values import Unavailable
from dgprofile.specs.model_config import load_model_config


def h200_pair_machine():
    devices = probe_nvidia(fake.h200_nvlink_pair(), read_host_meminfo=lambda: {"MemTotal": 2**38,
                                                                              "MemAvailable": 2**37},
                           own_pid=1).devices
    return factory.machine(accelerators=devices)


# GPU 0's limits in the recorded 2x H200 run.
H200_LIMITS = factory.limits(device="cuda:0", device_name="NVIDIA H200", stream_bytes_per_s=4.51e12,
                             peak_bf16_flops_per_s=6.75e14)


def run_with(layers=(), sweep=None, in_graphs=None) -> MultiGpuRun:
    return MultiGpuRun(gpu_indices=(0, 1), backend="nccl",
                       per_gpu_limits=(GpuLimits(0, "cuda:0", H200_LIMITS), GpuLimits(1, "cuda:1", H200_LIMITS)),
                       all_reduce=sweep or recorded.h200_pair_sweep(),
                       all_reduce_in_graphs=in_graphs or Unavailable("not measured: eager only"),
                       tensor_parallel_layers=tuple(layers), model_id=load_model_config().id, seconds_taken=30.0)


def test_recorded_h200_sweep_fits_a_latency_near_its_small_messages_and_explains_the_largest() -> None:
    fit = setup.fit_all_reduce(recorded.h200_pair_sweep())
    assert not isinstance(fit, Unavailable)
    assert 43e-6 <= fit.latency_seconds <= 55e-6
    largest = 2048 * recorded.HIDDEN * 2
    assert fit.latency_seconds + largest / fit.bus_bytes_per_s == pytest.approx(59e-6, rel=0.1)


def test_one_size_cannot_tell_latency_from_bandwidth() -> None:
    sweep = dataclasses.replace(recorded.h200_pair_sweep(), points=(recorded.point(8, 47e-6),))
    fit = setup.fit_all_reduce(sweep)
    assert isinstance(fit, Unavailable) and "fewer than two" in fit.reason


def test_times_that_do_not_grow_with_size_fall_back_to_the_largest_messages_bandwidth() -> None:
    sweep = dataclasses.replace(recorded.h200_pair_sweep(), points=(
        recorded.point(1, 50e-6), recorded.point(256, 48e-6)))
    fit = setup.fit_all_reduce(sweep)
    assert not isinstance(fit, Unavailable)
    assert fit.bus_bytes_per_s == sweep.points[1].bus_bytes_per_s and fit.latency_seconds == 48e-6


def test_measured_link_keeps_the_engine_prior_for_cuda_graphs_and_the_measurement_for_eager() -> None:
    path = setup.detected_interconnect(h200_pair_machine(), 2)
    assert isinstance(path, Interconnect) and path.kind == "nvlink"
    graphs = setup.measured_interconnect(recorded.h200_pair_sweep(), path, "cuda-graphs")
    eager = setup.measured_interconnect(recorded.h200_pair_sweep(), path, "eager")
    assert isinstance(graphs, Interconnect) and isinstance(eager, Interconnect)
    assert graphs.source == eager.source == "measured-all-reduce"
    assert graphs.all_reduce_latency_seconds == setup.ALL_REDUCE_LATENCY_SECONDS["nvlink"]
    assert "engine prior" in graphs.basis and "measured on this machine" in graphs.basis
    assert eager.all_reduce_latency_seconds == eager.measured_latency_seconds == graphs.measured_latency_seconds
    assert graphs.bytes_per_s == eager.bytes_per_s


def test_check_over_two_gpus_predicts_from_the_measured_link_and_says_so() -> None:
    predictions = predict_for_machine(h200_pair_machine(), factory.limits(), factory.passes(),
                                      options=PredictOptions(gpus=2), multi_gpu=run_with())
    link = predictions.headline.scenario.interconnect
    assert isinstance(link, Interconnect) and link.source == "measured-all-reduce"
    basis = {b.quantity: b for b in predictions.basis}
    assert basis["interconnect"].kind == "measured" and "measured on this machine" in basis["interconnect"].source


def test_a_sweep_over_other_gpus_than_predicted_leaves_the_link_to_nvml() -> None:
    four = dataclasses.replace(recorded.h200_pair_sweep(), world_size=4)
    predictions = predict_for_machine(h200_pair_machine(), factory.limits(), factory.passes(),
                                      options=PredictOptions(gpus=2), multi_gpu=run_with(sweep=four))
    link = predictions.headline.scenario.interconnect
    assert isinstance(link, Interconnect) and link.source == "nvml-topology"


def test_measured_one_gpu_passes_are_split_over_two_gpus_not_kept_whole() -> None:
    """A bug this issue found: with --gpus 2 on a measured machine, the ideal engine scaled its one-GPU passes by
    the two-GPU physics against itself (so kept them whole), and the pass factors set one-GPU passes against a
    two-GPU roofline (twice too slow a device for every engine)."""
    machine = h200_pair_machine()
    one = predict_for_machine(machine, factory.limits(), factory.passes(), options=PredictOptions(engine="ideal"))
    two = predict_for_machine(machine, factory.limits(), factory.passes(),
                              options=PredictOptions(engine="ideal", gpus=2), multi_gpu=run_with())
    assert [f.factor for f in one.ceilings.pass_factors] == [f.factor for f in two.ceilings.pass_factors]
    denoise = {name: next(p for p in prediction.headline.diffusion.passes if p.pass_kind == "dg-denoise")
               for name, prediction in (("one", one), ("two", two))}
    assert denoise["two"].seconds < 0.75 * denoise["one"].seconds


def test_split_pass_check_shares_out_the_roofline_work_and_keeps_the_latency_whole() -> None:
    layers = [recorded.split_layer("sliding", whole_seconds=0.5e-3, split_seconds=0.36e-3),
              recorded.split_layer("global", whole_seconds=0.7e-3, split_seconds=0.46e-3)]
    machine = h200_pair_machine()
    config = load_model_config()
    checks = split_pass_checks(run_with(layers), config, setup.detected_interconnect(machine, 2))
    assert not isinstance(checks, Unavailable)
    (check,) = checks
    link = setup.measured_interconnect(recorded.h200_pair_sweep(), setup.detected_interconnect(machine, 2), "eager")
    assert isinstance(link, Interconnect)
    per_layer_link = 2 * link.all_reduce_latency_seconds + 3 * 256 * recorded.HIDDEN * 2 / link.bytes_per_s
    assert check.interconnect_seconds == pytest.approx(30 * per_layer_link)
    roofline = {layer.layer_type: layer_roofline_seconds(config, layer, H200_LIMITS) for layer in layers}
    assert 0 < roofline["sliding"] < 0.5e-3 and 0 < roofline["global"] < 0.7e-3
    assert check.roofline_seconds == pytest.approx(25 * roofline["sliding"] + 5 * roofline["global"])
    assert check.single_gpu_seconds == pytest.approx(25 * 0.5e-3 + 5 * 0.7e-3)
    assert check.measured_seconds == pytest.approx(25 * 0.36e-3 + 5 * 0.46e-3)
    assert check.predicted_seconds == pytest.approx(
        check.single_gpu_seconds - check.roofline_seconds / 2 + check.interconnect_seconds)
    assert check.difference == pytest.approx(check.predicted_seconds / check.measured_seconds - 1)


def test_recorded_h200_pair_split_layers_are_predicted_within_fifteen_percent() -> None:
    run = run_with(recorded.h200_pair_split_layers(), in_graphs=recorded.h200_pair_graph_sweep())
    checks = split_pass_checks(run, load_model_config(), setup.detected_interconnect(h200_pair_machine(), 2))
    assert not isinstance(checks, Unavailable)
    assert [(c.pass_kind, c.concurrency, c.launch_mode) for c in checks] == [
        ("ar-step", 1, "cuda-graph"), ("dg-denoise", 1, "cuda-graph"), ("dg-denoise", 4, "cuda-graph")]
    assert all(abs(c.difference) <= 0.15 for c in checks), [round(c.difference, 3) for c in checks]


def test_layers_replayed_from_graphs_take_the_link_measured_in_graphs() -> None:
    layers = [recorded.split_layer(t, whole_seconds=0.5e-3, split_seconds=0.36e-3, launch_mode="cuda-graph")
              for t in ("sliding", "global")]
    path = setup.detected_interconnect(h200_pair_machine(), 2)
    (check,) = split_pass_checks(run_with(layers, in_graphs=recorded.h200_pair_graph_sweep()), load_model_config(),
                                 path)  # type: ignore[misc]
    link = setup.measured_interconnect(recorded.h200_pair_graph_sweep(), path, "cuda-graphs")
    assert isinstance(link, Interconnect) and link.all_reduce_latency_seconds < 15e-6
    per_layer_link = 2 * link.all_reduce_latency_seconds + 3 * 256 * recorded.HIDDEN * 2 / link.bytes_per_s
    assert check.launch_mode == "cuda-graph" and check.interconnect_seconds == pytest.approx(30 * per_layer_link)


def test_split_pass_check_without_the_first_gpus_limits_says_why() -> None:
    layers = [recorded.split_layer(t, whole_seconds=0.5e-3, split_seconds=0.36e-3) for t in ("sliding", "global")]
    run = dataclasses.replace(run_with(layers), per_gpu_limits=Unavailable("not measured: rank 0 failed"))
    checks = split_pass_checks(run, load_model_config(), Unavailable("no path"))
    assert isinstance(checks, Unavailable) and "rank 0 failed" in checks.reason


def test_split_pass_check_without_layers_says_why() -> None:
    run = dataclasses.replace(run_with(), tensor_parallel_layers=Unavailable("not measured: rank 1 failed"))
    assert split_pass_checks(run, load_model_config(), Unavailable("no path")) == Unavailable(
        "not measured: rank 1 failed")


def test_a_cuda_graph_engine_takes_the_latency_measured_in_graphs_not_the_prior() -> None:
    machine = h200_pair_machine()
    predictions = predict_for_machine(machine, factory.limits(), factory.passes(), options=PredictOptions(gpus=2),
                                      multi_gpu=run_with(in_graphs=recorded.h200_pair_graph_sweep()))
    link = predictions.headline.scenario.interconnect
    assert isinstance(link, Interconnect) and predictions.headline.scenario.execution_mode == "cuda-graphs"
    assert 9e-6 < link.all_reduce_latency_seconds < setup.ALL_REDUCE_LATENCY_SECONDS["nvlink"]
    assert "cuda-graph NCCL" in link.basis and "engine prior" not in link.basis
    eager = predict_for_machine(machine, factory.limits(), factory.passes(),
                                options=PredictOptions(gpus=2, execution_mode="eager"),
                                multi_gpu=run_with(in_graphs=recorded.h200_pair_graph_sweep()))
    eager_link = eager.headline.scenario.interconnect
    assert isinstance(eager_link, Interconnect) and eager_link.all_reduce_latency_seconds > 40e-6


def test_an_eager_engine_priced_from_a_graph_sweep_alone_is_told_its_latency_is_a_lower_bound() -> None:
    path = setup.detected_interconnect(h200_pair_machine(), 2)
    link = setup.measured_interconnect(recorded.h200_pair_graph_sweep(), path, "eager")
    assert isinstance(link, Interconnect) and "lower bound" in link.basis


def test_a_fitted_bandwidth_above_the_links_own_is_replaced_by_the_links() -> None:
    path = setup.detected_interconnect(h200_pair_machine(), 2)
    fit = setup.fit_all_reduce(recorded.h200_pair_sweep())
    assert isinstance(path, Interconnect) and not isinstance(fit, Unavailable)
    assert fit.bus_bytes_per_s > path.bytes_per_s  # the recorded sweep's sizes are latency-bound
    link = setup.measured_interconnect(recorded.h200_pair_sweep(), path, "eager")
    assert isinstance(link, Interconnect)
    assert link.bytes_per_s == path.bytes_per_s
    assert "above the link's" in link.basis
