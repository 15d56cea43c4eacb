"""The link term from a measured all-reduce sweep, and the model's split passes against measured split layers."""

from __future__ import annotations

import dataclasses

import pytest
import result_factory as factory
from fakes import nvml as fake
from fakes import recorded_all_reduce as recorded

from dgprofile.app.predictor import PredictOptions, predict_for_machine
from dgprofile.model import setup
from dgprofile.model.tensor_parallel import split_pass_checks
from dgprofile.probes.gpu_nvidia import probe_nvidia
from dgprofile.records.multi_gpu import MultiGpuRun
from dgprofile.records.predictions import Interconnect
from dgprofile.records.values import Unavailable
from dgprofile.specs.model_config import load_model_config


def h200_pair_machine():
    devices = probe_nvidia(fake.h200_nvlink_pair(), read_host_meminfo=lambda: {"MemTotal": 2**38,
                                                                              "MemAvailable": 2**37},
                           own_pid=1).devices
    return factory.machine(accelerators=devices)


def run_with(layers=(), sweep=None) -> MultiGpuRun:
    return MultiGpuRun(gpu_indices=(0, 1), backend="nccl", per_gpu_limits=(), all_reduce=sweep or
                       recorded.h200_pair_sweep(), tensor_parallel_layers=tuple(layers),
                       model_id=load_model_config().id, seconds_taken=30.0)


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


def test_split_pass_check_predicts_the_whole_layer_halved_plus_the_measured_link() -> None:
    layers = [recorded.split_layer("sliding", whole_seconds=0.5e-3, split_seconds=0.36e-3),
              recorded.split_layer("global", whole_seconds=0.7e-3, split_seconds=0.46e-3)]
    machine = h200_pair_machine()
    checks = split_pass_checks(run_with(layers), load_model_config(), setup.detected_interconnect(machine, 2))
    assert not isinstance(checks, Unavailable)
    (check,) = checks
    link = setup.measured_interconnect(recorded.h200_pair_sweep(), setup.detected_interconnect(machine, 2), "eager")
    assert isinstance(link, Interconnect)
    per_layer_link = 2 * link.all_reduce_latency_seconds + 3 * 256 * recorded.HIDDEN * 2 / link.bytes_per_s
    assert check.interconnect_seconds == pytest.approx(30 * per_layer_link)
    assert check.single_gpu_seconds == pytest.approx(25 * 0.5e-3 + 5 * 0.7e-3)
    assert check.measured_seconds == pytest.approx(25 * 0.36e-3 + 5 * 0.46e-3)
    assert check.predicted_seconds == pytest.approx(check.single_gpu_seconds / 2 + check.interconnect_seconds)
    assert check.difference == pytest.approx(check.predicted_seconds / check.measured_seconds - 1)


def test_split_pass_check_without_layers_says_why() -> None:
    run = dataclasses.replace(run_with(), tensor_parallel_layers=Unavailable("not measured: rank 1 failed"))
    assert split_pass_checks(run, load_model_config(), Unavailable("no path")) == Unavailable(
        "not measured: rank 1 failed")


def test_a_fitted_bandwidth_above_the_links_own_is_replaced_by_the_links() -> None:
    path = setup.detected_interconnect(h200_pair_machine(), 2)
    fit = setup.fit_all_reduce(recorded.h200_pair_sweep())
    assert isinstance(path, Interconnect) and not isinstance(fit, Unavailable)
    assert fit.bus_bytes_per_s > path.bytes_per_s  # the recorded sweep's sizes are latency-bound
    link = setup.measured_interconnect(recorded.h200_pair_sweep(), path, "eager")
    assert isinstance(link, Interconnect)
    assert link.bytes_per_s == path.bytes_per_s
    assert "above the link's" in link.basis
