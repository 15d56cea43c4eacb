"""Terminal text for decode passes: tables per precision, full-depth comparison, methods and reductions."""

from __future__ import annotations

from dataclasses import replace

from result_factory import passes

from dgprofile.records.passes import PassTimes
from dgprofile.records.values import Unavailable
from dgprofile.terminal.format_passes import format_passes
from dgprofile.text.units import flop_count_text


def test_measured_precisions_come_first_with_every_pass_kind():
    text = format_passes(passes(precisions=("bf16", "fp8"), concurrencies=(1,)))
    assert text.index("bf16 (measured)") < text.index("fp8 (measured)")
    for label in ("AR step", "DG denoise", "DG commit", "prefill"):
        assert label in text
    assert "Basis: sampled 6 of 30 layers" in text


def test_modelled_precisions_are_labelled_and_show_no_spread():
    times = passes(precisions=("bf16", "int4"), concurrencies=(1,))
    modelled = tuple(replace(m, measured=False, basis="modelled: from bf16") if m.precision == "int4" else m
                     for m in times.passes)
    text = format_passes(replace(times, passes=modelled))
    assert "int4 (modelled from the bf16 passes)" in text
    assert text.split("int4 (modelled")[1].count("modelled") >= 4


def test_full_depth_measurement_is_shown_beside_the_estimate():
    times = passes(concurrencies=(1,))
    first = replace(times.passes[1], full_depth_seconds=times.passes[1].seconds / 1.02)
    text = format_passes(replace(times, passes=(times.passes[0], first, *times.passes[2:])))
    assert "(+2.0%)" in text


def test_unknown_floors_print_as_a_dash():
    times = passes(concurrencies=(1,))
    blind = tuple(replace(m, fraction_of_bandwidth_floor=Unavailable("no bandwidth")) for m in times.passes)
    assert "  -  " in format_passes(replace(times, passes=blind))


def test_methods_and_reductions_are_listed():
    times = replace(passes(concurrencies=(1,)), methods=("experts: triton",), reductions=("cpu: concurrency 1 only",))
    text = format_passes(times)
    assert "  experts: triton" in text and "  - cpu: concurrency 1 only" in text


def test_unmeasured_passes_say_why():
    assert format_passes(Unavailable("torch is not installed")) == "Decode passes: not measured (torch is not installed)"
    empty = PassTimes(model_id="m", device="cpu", passes=(), reductions=("memory: nothing fits",), seconds_taken=0.1)
    assert "nothing fits" in format_passes(empty)


def test_flop_counts_use_decimal_prefixes():
    assert flop_count_text(2.66e12) == "2.66 TFLOP"
    assert flop_count_text(8.74e9) == "8.74 GFLOP"
    assert flop_count_text(12.0) == "12 FLOP"
