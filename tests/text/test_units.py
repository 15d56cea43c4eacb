"""One formatter per kind of quantity: significant figures for people, absurd magnitudes and words."""

from __future__ import annotations

import pytest

from dgprofile.records.values import Unavailable
from dgprofile.text.units import (
    bandwidth_text,
    bytes_text,
    count_text,
    factor_text,
    flop_count_text,
    flops_text,
    hertz_text,
    intensity_text,
    percent_text,
    plural,
    seconds_text,
    signed_percent_text,
    significant_text,
    speedup_band_text,
    speedup_relation,
    speedup_text,
    tokens_per_s_text,
    watts_text,
    with_article,
)


@pytest.mark.parametrize(("value", "text"), [
    (1.0003, "1.00"), (5.098, "5.10"), (0.191, "0.191"), (257.3, "257"), (1029.3, "1,029"), (9.996, "10.0"),
    (-4.2, "-4.20"), (0.0, "0"), (266337394714355456.0, "2.66e17"), (3.7e-9, "3.70e-9"),
    (float("nan"), "not a number"), (float("inf"), "infinite"),
])
def test_significant_text_keeps_three_figures_and_writes_absurd_magnitudes_as_powers_of_ten(
        value: float, text: str) -> None:
    assert significant_text(value) == text


def test_one_second_beside_five_seconds_reads_with_the_same_precision() -> None:
    assert (seconds_text(1.0003), seconds_text(5.098)) == ("1.00 s", "5.10 s")


@pytest.mark.parametrize(("value", "text"), [
    (3.7e-9, "3.70 ns"), (4.97e-3, "4.97 ms"), (1.18e-6, "1.18 us"), (0.257, "257 ms"), (99.4, "99.4 s"),
    (100.0, "1.67 min"), (91 * 60, "91.0 min"), (2 * 3600, "2.00 h"), (72 * 3600, "3.00 days"),
    (1e12, "1.16e7 days"), (1e-13, "1.00e-4 ns"), (0.0, "0 s"), (Unavailable("not timed"), "unavailable (not timed)"),
])
def test_seconds_text_never_prints_a_fraction_of_the_smallest_unit_as_decimals(value: float, text: str) -> None:
    assert seconds_text(value) == text


@pytest.mark.parametrize(("value", "text"), [
    (85017493504, "79.2 GiB"), (18217792608, "17.0 GiB"), (480 << 20, "480 MiB"), (12, "12 B"), (0, "0 B"),
    ((1 << 40) - 1, "1.00 TiB"), (3 << 60, "3.00 EiB"), (266337394714355456.0 * (1 << 40), "242,232 YiB"),
    (1e40, "8.27e15 YiB"),
])
def test_bytes_text_climbs_binary_prefixes_instead_of_printing_a_row_of_digits(value: float, text: str) -> None:
    assert bytes_text(value) == text


@pytest.mark.parametrize(("formatter", "value", "text"), [
    (bandwidth_text, 3.157e12, "3.16 TB/s"), (bandwidth_text, 999.96e9, "1.00 TB/s"), (bandwidth_text, 4.1e11, "410 GB/s"),
    (bandwidth_text, 23.2e9, "23.2 GB/s"), (bandwidth_text, 5.0, "5.00 B/s"), (bandwidth_text, 1e30, "1.00e6 YB/s"),
    (flops_text, 6.83e14, "683 TFLOP/s"), (flops_text, 1.27e15, "1.27 PFLOP/s"), (hertz_text, 1.98e9, "1.98 GHz"),
    (flop_count_text, 1.234e12, "1.23 TFLOP"), (watts_text, 700.0, "700 W"),
])
def test_decimal_units(formatter, value: float, text: str) -> None:
    assert formatter(value) == text


@pytest.mark.parametrize(("value", "text"), [
    (5.0786, "5.1x"), (0.10583, "0.11x"), (0.0714, "0.071x"), (20.3, "20x"), (178.3, "178x"), (1800.0, "1,800x"),
    (1.0, "1.0x"), (9.96, "10x"), (0.0996, "0.10x"), (2.5e7, "2.5e7x"), (0.00012, "1.2e-4x"),
])
def test_factor_text_keeps_two_figures_and_whole_numbers_from_ten(value: float, text: str) -> None:
    assert factor_text(value) == text


def test_a_ratio_of_eighteen_hundred_is_not_written_in_exponent_notation() -> None:
    assert "e+" not in factor_text(1.8e3) and factor_text(1.8e3) == "1,800x"


def test_speedup_band_is_rounded_outwards_so_a_low_end_short_of_3x_never_reads_3x() -> None:
    assert speedup_band_text(2.96, 5.51) == "2.9x to 5.6x"
    assert speedup_band_text(0.0714, 0.1588) == "0.071x to 0.16x"
    assert speedup_band_text(Unavailable("x"), 2.0) == "band unavailable"


def test_speedup_text_and_relation_use_the_same_factor() -> None:
    assert speedup_text(0.26) == "0.26x"
    assert speedup_relation(0.26) == "3.8x slower"
    assert speedup_relation(5.08) == "5.1x faster"
    assert speedup_relation(1.04) == speedup_relation(1 / 1.04) == "about as fast"


@pytest.mark.parametrize(("value", "text"), [(62.9676, "63.0"), (1023.0, "1,023"), (3, "3"), (0.1912, "0.191")])
def test_count_text_writes_whole_counts_whole_and_mean_counts_with_three_figures(value: float, text: str) -> None:
    assert count_text(value) == text


def test_rates_percentages_and_intensities() -> None:
    assert tokens_per_s_text(1029.3) == "1,029 tok/s"
    assert tokens_per_s_text(0.1912) == "0.191 tok/s"
    assert tokens_per_s_text(3e20) == "3.00e20 tok/s"
    assert percent_text(0.938) == "93.8%"
    assert percent_text(1e20) == "1.00e22%"
    assert (signed_percent_text(0.012), signed_percent_text(-0.44)) == ("+1.2%", "-44.0%")
    assert (intensity_text(216.2), intensity_text(4.32)) == ("216 FLOP/byte", "4.3 FLOP/byte")


@pytest.mark.parametrize(("count", "text"), [(0, "0 result files"), (1, "1 result file"), (2, "2 result files"),
                                             (1000, "1,000 result files")])
def test_plural_agrees_with_the_count(count: int, text: str) -> None:
    assert plural(count, "result file") == text


def test_plural_takes_an_irregular_form() -> None:
    assert plural(2, "analysis", "analyses") == "2 analyses"


@pytest.mark.parametrize(("word", "text"), [
    ("int4", "an int4"), ("int8", "an int8"), ("fp8", "an fp8"), ("nvfp4", "an nvfp4"), ("bf16", "a bf16"),
    ("8-token", "an 8-token"), ("11-token", "an 11-token"), ("18-token", "an 18-token"), ("80-token", "an 80-token"),
    ("64-token", "a 64-token"), ("128-token", "a 128-token"), ("11000-token", "an 11000-token"),
])
def test_with_article_reads_formats_and_numbers_aloud(word: str, text: str) -> None:
    assert with_article(word) == text
