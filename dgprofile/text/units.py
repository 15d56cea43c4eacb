"""Turn stored SI values (bytes, seconds, hertz, FLOP/s) into text. Used only at the edges: terminal and HTML.

One formatter per kind of quantity, so a figure reads the same wherever it is shown. The rules, chosen for people
reading them:

* measured quantities (sizes, rates, durations, counts) keep three significant figures, trailing zeros included,
  so "1.00 s" stands beside "5.10 s" and both say how precise they are; from 1,000 up whole numbers are written
  out with thousands separators (1,029 tok/s) rather than rounded (1,030);
* factors (a speedup, B against A) keep two significant figures and become whole numbers from 10 up (5.1x,
  0.11x, 178x, 1,800x): the model behind them is good to about 15%, so a third figure would be noise;
* a unit prefix is chosen so the number stays below 1,000; past the largest prefix, and below the smallest unit,
  a number is written as a mantissa and power of ten (2.4e5 YiB) instead of a row of digits;
* an uncertainty band is rounded outwards (its low end down, its high end up), so the text never claims a
  narrower band than the model gave: a low end of 2.96x reads 2.9x, which is why its verdict is not `applies`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from dgprofile.records.values import Unavailable

MEASURED_DIGITS = 3  # significant figures of measured quantities
FACTOR_DIGITS = 2  # significant figures of factors (speedups, ratios)
# Beyond this a number in its largest unit is written with a power of ten.
LARGEST_PLAIN = 1e6

_DECIMAL_PREFIXES = (("Y", 1e24), ("Z", 1e21), ("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6),
                     ("k", 1e3))
_BINARY_PREFIXES = (("YiB", 1 << 80), ("ZiB", 1 << 70), ("EiB", 1 << 60), ("PiB", 1 << 50), ("TiB", 1 << 40),
                    ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10))


def _not_finite_text(value: float) -> str | None:
    if math.isnan(value):
        return "not a number"
    if math.isinf(value):
        return "infinite" if value > 0 else "minus infinity"
    return None


def _power_of_ten_text(value: float, digits: int) -> str:
    """``value`` as mantissa and power of ten ('2.4e5'): for magnitudes no unit prefix covers."""
    mantissa, exponent = f"{value:.{digits - 1}e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def significant_text(value: float, digits: int = MEASURED_DIGITS) -> str:
    """``value`` with ``digits`` significant figures, trailing zeros kept ('1.00', '5.10', '0.191'); whole numbers
    with thousands separators from ``10 ** digits`` up ('1,029'); a power of ten beyond ``LARGEST_PLAIN`` or below
    a thousandth."""
    special = _not_finite_text(value)
    if special is not None:
        return special
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= LARGEST_PLAIN or magnitude < 1e-3:
        return _power_of_ten_text(value, digits)
    if magnitude >= 10 ** digits:
        return f"{round(value):,}"
    rounded = float(f"{value:.{digits - 1}e}")  # rounding can carry into the next decade (9.996 -> 10.0)
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(rounded))))
    return f"{rounded:,.{decimals}f}"


def _prefixed(value: float, unit: str, prefixes: Sequence[tuple[str, float]], *, binary: bool = False,
              countable: bool = False) -> str:
    """``value`` scaled by the largest prefix that leaves it at least 1; a ``countable`` unit (bytes, FLOPs)
    is written whole when no prefix applies ('12 B')."""
    special = _not_finite_text(value)
    if special is not None:
        return special
    magnitude = abs(value)
    for prefix, factor in prefixes:
        # Compare after rounding, so 999.96 GB/s reads 1.00 TB/s rather than 1,000 GB/s (below 0.99 of a prefix
        # no rounding reaches it, and the text need not be made: a fleet writes 20,000 such figures).
        if magnitude >= 0.99 * factor and abs(float(f"{value / factor:.{MEASURED_DIGITS - 1}e}")) >= 1:
            return f"{significant_text(value / factor)} {prefix if binary else prefix + unit}"
    return f"{count_text(value) if countable else significant_text(value)} {unit}"


def unavailable_text(value: Unavailable) -> str:
    """How an unavailable value reads in a table cell."""
    return f"unavailable ({value.reason})"


def bytes_text(value: float | Unavailable) -> str:
    """A memory size in binary units ('79.2 GiB', '480 MiB'), as operating systems and nvidia-smi show them."""
    if isinstance(value, Unavailable):
        return unavailable_text(value)
    return _prefixed(value, "B", _BINARY_PREFIXES, binary=True, countable=True)


def bandwidth_text(value: float | Unavailable) -> str:
    """A bandwidth in decimal units ('3.16 TB/s', '410 GB/s'), as datasheets give it."""
    return unavailable_text(value) if isinstance(value, Unavailable) else _prefixed(value, "B/s", _DECIMAL_PREFIXES)


def flops_text(value: float | Unavailable) -> str:
    """A FLOP rate ('683 TFLOP/s')."""
    return unavailable_text(value) if isinstance(value, Unavailable) else _prefixed(value, "FLOP/s",
                                                                                      _DECIMAL_PREFIXES)


def flop_count_text(value: float) -> str:
    """A FLOP count, not a rate ('1.23 TFLOP')."""
    return _prefixed(value, "FLOP", _DECIMAL_PREFIXES, countable=True)


def hertz_text(value: float | Unavailable) -> str:
    """A clock rate ('1.98 GHz')."""
    return unavailable_text(value) if isinstance(value, Unavailable) else _prefixed(value, "Hz", _DECIMAL_PREFIXES)


# Units of time, each used from its lower bound up: 100 s reads 1.67 min, 100 min 1.67 h, 48 h 2.00 days.
_DURATIONS = (("days", 48 * 3600.0), ("h", 6000.0), ("min", 100.0), ("s", 1.0), ("ms", 1e-3), ("us", 1e-6),
              ("ns", 1e-9))
_DURATION_SIZES = {"days": 86400.0, "h": 3600.0, "min": 60.0}


def seconds_text(value: float | Unavailable) -> str:
    """A duration in the unit that keeps it readable: '8.64 ms', '1.00 s', '23.4 min', '1.52 h'."""
    if isinstance(value, Unavailable):
        return unavailable_text(value)
    special = _not_finite_text(value)
    if special is not None:
        return special
    if value == 0:
        return "0 s"
    for unit, lower in _DURATIONS:
        if abs(value) >= lower:
            return f"{significant_text(value / _DURATION_SIZES.get(unit, lower))} {unit}"
    return f"{significant_text(value / 1e-9)} ns"


def count_text(value: float) -> str:
    """A count or a rate without a unit: whole numbers as they are ('3', '1,023'); a fractional one, such as a mean
    number of passes, with three significant figures ('63.0', '0.191')."""
    if float(value).is_integer() and abs(value) < LARGEST_PLAIN:
        return f"{int(value):,}"
    return significant_text(value)


def tokens_per_s_text(value: float | Unavailable) -> str:
    """A decoding rate ('1,029 tok/s', '0.191 tok/s')."""
    return unavailable_text(value) if isinstance(value, Unavailable) else f"{significant_text(value)} tok/s"


def percent_text(fraction: float | Unavailable) -> str:
    """A fraction as a percentage with one decimal ('93.8%')."""
    if isinstance(fraction, Unavailable):
        return unavailable_text(fraction)
    special = _not_finite_text(fraction)
    if special is not None:
        return special
    percent = fraction * 100
    return f"{percent:,.1f}%" if abs(percent) < LARGEST_PLAIN else f"{_power_of_ten_text(percent, 3)}%"


def signed_percent_text(fraction: float) -> str:
    """A relative change or error with its sign ('+1.2%', '-44.0%')."""
    text = percent_text(fraction)
    return text if text.startswith("-") or _not_finite_text(fraction) else f"+{text}"


def whole_percent_text(value: int | Unavailable) -> str:
    """A percentage reported as a whole number (utilisation)."""
    return unavailable_text(value) if isinstance(value, Unavailable) else f"{value}%"


def watts_text(value: float | Unavailable) -> str:
    """A power limit ('700 W')."""
    return unavailable_text(value) if isinstance(value, Unavailable) else f"{significant_text(value)} W"


def intensity_text(value: float | Unavailable) -> str:
    """Arithmetic intensity or a ridge, in FLOP per byte ('216 FLOP/byte', '4.3 FLOP/byte'): a factor-like
    figure, so two significant figures and whole numbers from 10 up."""
    return unavailable_text(value) if isinstance(value, Unavailable) else f"{_factor_number(value)} FLOP/byte"


def plain_text(value: object) -> str:
    """Any probe value as text; unavailable values say why."""
    if isinstance(value, Unavailable):
        return unavailable_text(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return significant_text(value)
    return str(value)


def text_table(rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    """Rows as left-aligned columns for the terminal (the first row is usually the header)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]


def number_key(value: float | int | Unavailable) -> str:
    """A sort key for a numeric table cell (empty for unavailable, which sorts last)."""
    return "" if isinstance(value, Unavailable) else repr(float(value))


PASS_LABELS = {"ar-step": "AR decode step", "dg-denoise": "DG denoise pass", "dg-commit": "DG commit pass",
               "prefill": "prefill"}


# ---------------------------------------------------------------------------------------------------------------
# Words

def plural(count: int, noun: str, plural_noun: str = "") -> str:
    """'1 result file', '2 result files', '1,000 result files'; ``plural_noun`` for irregular nouns."""
    return f"{count:,} {noun if count == 1 else plural_noun or noun + 's'}"


# Letters whose spoken name starts with a vowel sound: "an f", "an int", "an nvfp4", but "a bf16".
_VOWEL_SOUND_LETTERS = set("aefhilmnorsx")


def with_article(word: str) -> str:
    """``word`` after 'a' or 'an' as it is read aloud: 'an int4', 'a bf16', 'an 8-token', 'an 18-token',
    'a 128-token'. Number formats and numbers are read letter by letter and digit by digit; other words by their
    first letter's sound."""
    first = word[:1].lower()
    if first.isdigit():
        digits = word[:len(word) - len(word.lstrip("0123456789"))]
        # 'eight', 'eleven', 'eighteen', 'eighty...' and 'eight hundred...' start with a vowel sound; so do
        # 11,000 and 18,000 (a group of three digits is read as one number).
        lead = digits[:len(digits) % 3 or 3]
        vowel = digits.startswith("8") or lead in ("11", "18")
    else:
        vowel = first in _VOWEL_SOUND_LETTERS
    return f"{'an' if vowel else 'a'} {word}"


# ---------------------------------------------------------------------------------------------------------------
# Factors: the speedup of DiffusionGemma over autoregressive Gemma 4 (above 1: DiffusionGemma is faster), and
# any other ratio of two like quantities

def _factor_number(value: float, rounding: str = "nearest") -> str:
    """Two significant figures, whole numbers from 10 up; ``rounding`` 'down' or 'up' rounds outwards."""
    special = _not_finite_text(value)
    if special is not None:
        return special
    if value == 0:
        return "0"
    if abs(value) >= LARGEST_PLAIN or abs(value) < 1e-3:
        return _power_of_ten_text(value, FACTOR_DIGITS)

    def decimals(number: float) -> int:
        return 0 if abs(number) >= 10 else FACTOR_DIGITS - 1 - math.floor(math.log10(abs(number)))

    scale = 10.0 ** decimals(value)
    # The nudge keeps a float just below a round figure (0.29 * 100 = 28.999...) from rounding down a step.
    scaled = {"nearest": round(value * scale), "down": math.floor(value * scale * (1 + 1e-12)),
              "up": math.ceil(value * scale * (1 - 1e-12))}[rounding]
    rounded = scaled / scale
    # Rounding can carry into the next decade (9.96 -> 10): write the result as that decade writes it.
    return f"{rounded:,.{decimals(rounded) if rounded else 0}f}"


def factor_text(value: float) -> str:
    """A factor, such as a speedup or a ratio of two rates ('5.1x', '0.11x', '178x', '1,800x')."""
    return f"{_factor_number(value)}x"


def speedup_text(value: float | Unavailable) -> str:
    """A speedup ('5.1x'; '0.11x' stays a ratio, ``speedup_relation`` says it in words)."""
    return unavailable_text(value) if isinstance(value, Unavailable) else factor_text(value)


def speedup_band_text(low: float | Unavailable, high: float | Unavailable) -> str:
    """An uncertainty band, rounded outwards ('4.3x to 5.9x')."""
    if isinstance(low, Unavailable) or isinstance(high, Unavailable):
        return "band unavailable"
    return f"{_factor_number(low, 'down')}x to {_factor_number(high, 'up')}x"


def speedup_with_band_text(speedup: float | Unavailable, low: float | Unavailable, high: float | Unavailable) -> str:
    """A speedup and its band ('5.1x (4.3x to 5.9x)')."""
    if isinstance(speedup, Unavailable):
        return speedup_text(speedup)
    return f"{speedup_text(speedup)} ({speedup_band_text(low, high)})"


ABOUT_AS_FAST = 0.05  # within 5% either way, two speeds read as the same


def speedup_relation(value: float) -> str:
    """How fast DiffusionGemma is against autoregressive Gemma 4: '5.1x faster', '4.5x slower', 'about as fast'."""
    if abs(math.log(value)) <= math.log1p(ABOUT_AS_FAST):
        return "about as fast"
    return f"{factor_text(value)} faster" if value > 1 else f"{factor_text(1 / value)} slower"


def speedup_words(value: float | Unavailable) -> str:
    """The speedup in a sentence: 'DiffusionGemma is 5.1x faster than autoregressive Gemma 4'."""
    if isinstance(value, Unavailable):
        return f"no speedup could be predicted ({value.reason})"
    relation = speedup_relation(value)
    return f"DiffusionGemma is {relation} {'as' if relation == 'about as fast' else 'than'} autoregressive Gemma 4"
