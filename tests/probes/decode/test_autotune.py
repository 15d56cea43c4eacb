"""Autotuner: the fastest working candidate per key, timed once through the harness, then reused."""

from __future__ import annotations

from dgprofile.probes.decode.autotune import Autotuner

SECONDS = {"slow": 0.004, "fast": 0.003, "broken": 0.001}


class CallReturnsItsSeconds:
    """A timer for calls that return how long they take."""

    name = "perf-counter"
    resolution_seconds = 1e-9

    def elapsed_seconds(self, fn, loops: int) -> float:
        return sum(fn() for _ in range(loops))


def build(method: str, inputs: list[str]):
    def call() -> float:
        if method == "broken":
            raise RuntimeError("no kernel for this shape")
        return SECONDS[method]

    return call


def test_the_fastest_working_method_is_picked_once_and_reused() -> None:
    made: list[str] = []
    tuner = Autotuner(timer=CallReturnsItsSeconds(), use_graph=False)
    inputs = lambda: made.append("inputs") or made  # noqa: E731
    assert tuner.fastest(("bf16", 8), ("slow", "broken", "fast"), inputs, build) == "fast"
    assert tuner.fastest(("bf16", 8), ("slow", "broken", "fast"), inputs, build) == "fast"
    assert made == ["inputs"]  # shared inputs are made only when the candidates are timed
    best, timed = tuner.choices[("bf16", 8)]
    assert best == "fast" and timed == {"slow": 0.004, "fast": 0.003}


def test_with_no_working_candidate_the_first_method_stands() -> None:
    tuner = Autotuner(timer=CallReturnsItsSeconds(), use_graph=False)
    assert tuner.fastest(("bf16", 1), ("broken", "broken"), lambda: [], build) == "broken"
    assert tuner.choices[("bf16", 1)] == ("broken", {})


def test_a_single_method_is_not_timed() -> None:
    def no_inputs() -> list[str]:
        raise AssertionError("a single method needs no timing")

    tuner = Autotuner(timer=CallReturnsItsSeconds(), use_graph=False)
    assert tuner.fastest(("bf16", 1), ("slow",), no_inputs, build) == "slow"
    assert tuner.choices == {}
