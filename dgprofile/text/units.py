"""Turn stored SI values (bytes, seconds, hertz, FLOP/s) into text. Used only at the edges: terminal and HTML."""

from __future__ import annotations

from collections.abc import Sequence

from dgprofile.records.values import Unavailable

_DECIMAL = ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def _scaled(value: float, unit: str, digits: int = 3) -> str:
    for factor, prefix in _DECIMAL:
        if abs(value) >= factor:
            return f"{value / factor:.{digits}g} {prefix}{unit}"
    return f"{value:.{digits}g} {unit}"


def unavailable_text(value: Unavailable) -> str:
    """How an unavailable value reads in a table cell."""
    return f"unavailable ({value.reason})"


def bytes_text(value: float | Unavailable) -> str:
    """Memory sizes in binary units (GiB), as operating systems and nvidia-smi show them."""
    if isinstance(value, Unavailable):
        return unavailable_text(value)
    for factor, unit in ((1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if abs(value) >= factor:
            return f"{value / factor:.1f} {unit}"
    return f"{value:.0f} B"


def bandwidth_text(value: float | Unavailable) -> str:
    """Bandwidth in decimal units (GB/s, TB/s), as datasheets give it."""
    return unavailable_text(value) if isinstance(value, Unavailable) else _scaled(value, "B/s")


def flops_text(value: float | Unavailable) -> str:
    """A FLOP rate (TFLOP/s)."""
    return unavailable_text(value) if isinstance(value, Unavailable) else _scaled(value, "FLOP/s")


def hertz_text(value: float | Unavailable) -> str:
    """A clock rate (MHz, GHz)."""
    return unavailable_text(value) if isinstance(value, Unavailable) else _scaled(value, "Hz")


def seconds_text(value: float | Unavailable) -> str:
    """A duration with a unit that keeps three significant digits (us, ms, s)."""
    if isinstance(value, Unavailable):
        return unavailable_text(value)
    if value < 1e-3:
        return f"{value * 1e6:.3g} us"
    if value < 1:
        return f"{value * 1e3:.3g} ms"
    if value < 100:
        return f"{value:.3g} s"
    if value < 6000:
        return f"{value / 60:.3g} min"
    return f"{value / 3600:.3g} h"


def count_text(value: float) -> str:
    """A rate or count: whole numbers from 100 up (1,029), three significant digits below (0.192, 15.2)."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def percent_text(fraction: float | Unavailable) -> str:
    """A fraction as a percentage."""
    return unavailable_text(fraction) if isinstance(fraction, Unavailable) else f"{fraction * 100:.1f}%"


def plain_text(value: object) -> str:
    """Any probe value as text; unavailable values say why."""
    if isinstance(value, Unavailable):
        return unavailable_text(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def text_table(rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    """Rows as left-aligned columns for the terminal (the first row is usually the header)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]


def number_key(value: float | int | Unavailable) -> str:
    """A sort key for a numeric table cell (empty for unavailable, which sorts last)."""
    return "" if isinstance(value, Unavailable) else repr(float(value))


def watts_text(value: float | Unavailable) -> str:
    """A power limit."""
    return unavailable_text(value) if isinstance(value, Unavailable) else f"{value:.0f} W"


def whole_percent_text(value: int | Unavailable) -> str:
    """A percentage reported as a whole number (utilisation)."""
    return unavailable_text(value) if isinstance(value, Unavailable) else f"{value}%"


def tokens_per_s_text(value: float | Unavailable) -> str:
    """A decoding rate."""
    if isinstance(value, Unavailable):
        return unavailable_text(value)
    return f"{value:,.0f} tok/s" if value >= 100 else f"{value:.3g} tok/s"


PASS_LABELS = {"ar-step": "AR decode step", "dg-denoise": "DG denoise pass", "dg-commit": "DG commit pass",
               "prefill": "prefill"}


# ---------------------------------------------------------------------------------------------------------------
# The speedup of DiffusionGemma over autoregressive Gemma 4 (above 1: DiffusionGemma is faster)

def speedup_text(value: float | Unavailable) -> str:
    """``5.1x`` for a speedup; ``0.22x`` stays a ratio (``speedup_relation`` says it in words)."""
    if isinstance(value, Unavailable):
        return unavailable_text(value)
    return f"{value:.2f}x" if value < 1 else f"{value:.1f}x"


def speedup_band_text(low: float | Unavailable, high: float | Unavailable) -> str:
    """An uncertainty band, e.g. '4.3x to 5.9x'."""
    if isinstance(low, Unavailable) or isinstance(high, Unavailable):
        return "band unavailable"
    return f"{speedup_text(low)} to {speedup_text(high)}"


def speedup_with_band_text(speedup: float | Unavailable, low: float | Unavailable, high: float | Unavailable) -> str:
    """A speedup and its band, e.g. '5.1x (4.3x to 5.9x)'."""
    if isinstance(speedup, Unavailable):
        return speedup_text(speedup)
    return f"{speedup_text(speedup)} ({speedup_band_text(low, high)})"


def speedup_relation(value: float) -> str:
    """How fast DiffusionGemma is against autoregressive Gemma 4: '5.1x faster', '4.5x slower', 'about as fast'."""
    if 0.95 <= value <= 1.05:
        return "about as fast"
    return f"{value:.1f}x faster" if value > 1 else f"{1 / value:.1f}x slower"


def speedup_words(value: float | Unavailable) -> str:
    """The speedup in a sentence: 'DiffusionGemma is 5.1x faster than autoregressive Gemma 4'."""
    if isinstance(value, Unavailable):
        return f"no speedup could be predicted ({value.reason})"
    relation = speedup_relation(value)
    return f"DiffusionGemma is {relation} {'as' if relation == 'about as fast' else 'than'} autoregressive Gemma 4"
