"""Pick the fastest working method for each pass shape: every candidate timed once, the choice then reused."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from dgprofile.probes.harness import Budget, Timer, graph_or_eager

Method = TypeVar("Method", bound=str)
Inputs = TypeVar("Inputs")
# Short: an autotuning sample only has to rank methods that differ by more than their noise.
AUTOTUNE_BUDGET = Budget(min_sample_seconds=0.002, samples=3, max_seconds=0.05, warmup=1)


class Autotuner:
    """Times candidate methods and remembers, per key, the fastest that worked and what each took."""

    def __init__(self, *, timer: Timer, use_graph: bool) -> None:
        self.timer = timer
        self.use_graph = use_graph
        self.choices: dict[tuple[object, ...], tuple[str, dict[str, float]]] = {}

    def fastest(self, key: tuple[object, ...], methods: Sequence[Method], inputs: Callable[[], Inputs],
                build: Callable[[Method, Inputs], Callable[[], object]]) -> Method:
        """The fastest of ``methods`` for ``key``; ``inputs()`` makes what all candidates share (only when they
        are timed), ``build(method, inputs)`` the call to time. A method that fails at this shape, or that cannot
        be captured in a CUDA graph where graphs are used (as an engine would need), is no candidate; with none
        left, the first method."""
        if len(methods) == 1:
            return methods[0]
        if key not in self.choices:
            shared = inputs()
            seconds: dict[str, float] = {}
            for method in methods:
                call = build(method, shared)
                try:
                    prepared = graph_or_eager(call, use_graph=self.use_graph)
                    if prepared.fallback_reason:
                        continue
                    seconds[method] = AUTOTUNE_BUDGET.measure(prepared.call, timer=self.timer,
                                                              ops_per_call=prepared.ops_per_call).median_seconds
                except Exception:  # a method that fails at this shape is simply not a candidate for it
                    continue
                finally:
                    del call  # each candidate's buffers go before the next one's are built
            best = min(seconds, key=seconds.__getitem__) if seconds else methods[0]
            self.choices[key] = (best, seconds)
        return self.choices[key][0]  # type: ignore[return-value]
