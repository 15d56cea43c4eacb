"""The server's own timing, read from its Prometheus ``/metrics`` endpoint, beside what the client measured.

vLLM publishes per-request histograms (sums, counts and buckets, labelled with the served model's name):
``vllm:time_to_first_token_seconds``, ``vllm:e2e_request_latency_seconds`` and ``vllm:request_generation_tokens``
(see vLLM's "Production Metrics" documentation, https://docs.vllm.ai/en/latest/usage/metrics.html). `verify`
reads them before and after each concurrency level, so only the increments (the level's own requests) count, and
sets their means beside the client's. Servers without ``/metrics`` (`transformers serve`) or without these
histograms report no timing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from dgprofile.records.values import Unavailable
from dgprofile.records.verification import RequestRecord, ServerLevelTiming, TimingAgreement

TTFT_HISTOGRAM = "vllm:time_to_first_token_seconds"
E2E_HISTOGRAM = "vllm:e2e_request_latency_seconds"
TOKENS_HISTOGRAM = "vllm:request_generation_tokens"
HISTOGRAMS = (TTFT_HISTOGRAM, E2E_HISTOGRAM, TOKENS_HISTOGRAM)
MODEL_LABEL = "model_name"
# A server may record a request's histograms just after it sends the last chunk; wait this long at most for the
# counts to cover every request the client saw finish.
SETTLE_SECONDS = 3.0
SETTLE_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class HistogramTotals:
    """One histogram's running sum and count (over every label set of the served model)."""

    total: float
    count: float


@dataclass(frozen=True)
class MetricsSnapshot:
    """The three request histograms at one moment."""

    histograms: dict[str, HistogramTotals]

    def requests(self) -> float:
        """Requests the server has counted finishing."""
        return self.histograms[E2E_HISTOGRAM].count


def no_timing(why: str) -> Unavailable:
    """The reason a server's timing is absent, in one form everywhere."""
    return Unavailable(f"the server reports no timing: {why}")


def parse_metrics(text: str, served_model: str) -> MetricsSnapshot | Unavailable:
    """The request histograms' sums and counts for ``served_model`` in a Prometheus text exposition."""
    from prometheus_client.parser import text_string_to_metric_families

    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    others: set[str] = set()
    try:
        for family in text_string_to_metric_families(text):
            if family.name not in HISTOGRAMS:
                continue
            for sample in family.samples:
                model = sample.labels.get(MODEL_LABEL, served_model)
                if model != served_model:
                    others.add(model)
                    continue
                if sample.name == family.name + "_sum":
                    sums[family.name] = sums.get(family.name, 0.0) + sample.value
                elif sample.name == family.name + "_count":
                    counts[family.name] = counts.get(family.name, 0.0) + sample.value
    except ValueError as exc:
        return no_timing(f"its /metrics is not Prometheus text ({exc})")
    missing = [name for name in HISTOGRAMS if name not in sums or name not in counts]
    if missing:
        if others and len(missing) == len(HISTOGRAMS):
            return no_timing(f"its /metrics counts models {', '.join(sorted(others))}, not {served_model}")
        return no_timing(f"its /metrics has no {', '.join(missing)}")
    return MetricsSnapshot({name: HistogramTotals(sums[name], counts[name]) for name in HISTOGRAMS})


def read_metrics(root_url: str, served_model: str, *, timeout_seconds: float = 5.0
                 ) -> MetricsSnapshot | Unavailable:
    """The server's request histograms now, or why it reports none."""
    import importlib.util

    import httpx

    if importlib.util.find_spec("prometheus_client") is None:
        return Unavailable("not read: reading a server's /metrics needs prometheus-client "
                           "(pip install 'dgprofile[verify]')")
    try:
        response = httpx.get(root_url + "/metrics", timeout=timeout_seconds)
    except httpx.HTTPError as exc:
        return no_timing(f"/metrics did not answer ({type(exc).__name__})")
    if response.status_code != 200:
        return no_timing(f"/metrics answered {response.status_code}")
    return parse_metrics(response.text, served_model)


def read_after(read: Callable[[], MetricsSnapshot | Unavailable], before: MetricsSnapshot, finished: int
               ) -> MetricsSnapshot | Unavailable:
    """A read after a level, repeated until the server has counted the ``finished`` requests or
    ``SETTLE_SECONDS`` pass (then the last read: the comparison says how many it covers)."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        after = read()
        if (isinstance(after, Unavailable) or after.requests() - before.requests() >= finished
                or time.monotonic() >= deadline):
            return after
        time.sleep(SETTLE_POLL_SECONDS)


def _agreement(client: float, server: float) -> TimingAgreement | Unavailable:
    if server <= 0:
        return Unavailable("the server counted nothing to compare with")
    return TimingAgreement(client=client, server=server, relative_difference=client / server - 1)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def level_timing(before: MetricsSnapshot, after: MetricsSnapshot, concurrency: int,
                 records: list[RequestRecord]) -> ServerLevelTiming:
    """The server's increments over one level beside the client's figures for the requests that finished."""
    finished = [r for r in records if not r.faults]
    increments = {name: HistogramTotals(after.histograms[name].total - before.histograms[name].total,
                                        after.histograms[name].count - before.histograms[name].count)
                  for name in HISTOGRAMS}
    server_requests = round(increments[E2E_HISTOGRAM].count)
    figures: dict[str, TimingAgreement | Unavailable] = {}
    client_ttft = _mean([r.ttft_seconds for r in finished if isinstance(r.ttft_seconds, float)])
    client_e2e = [r.total_latency_seconds for r in finished if isinstance(r.total_latency_seconds, float)]
    client_tokens = [r.output_tokens for r in finished if isinstance(r.output_tokens, int)]
    for key, name, client in (("ttft", TTFT_HISTOGRAM, client_ttft), ("e2e", E2E_HISTOGRAM, _mean(client_e2e))):
        server = increments[name]
        if client is None:
            figures[key] = Unavailable("no request finished on the client's side")
        elif server.count <= 0:
            figures[key] = Unavailable("the server counted no request over the level")
        else:
            figures[key] = _agreement(client, server.total / server.count)
    tokens = increments[TOKENS_HISTOGRAM].total
    if not client_tokens or len(client_tokens) != len(client_e2e):
        figures["tokens"] = figures["rate"] = Unavailable("the server's usage gave no token count for every "
                                                          "finished request")
    else:
        figures["tokens"] = _agreement(float(sum(client_tokens)), tokens)
        server_seconds = increments[E2E_HISTOGRAM].total
        figures["rate"] = (_agreement(sum(client_tokens) / sum(client_e2e), tokens / server_seconds)
                           if server_seconds > 0 and sum(client_e2e) > 0
                           else Unavailable("the server counted no request time over the level"))
    return ServerLevelTiming(concurrency=concurrency, client_requests=len(finished), server_requests=server_requests,
                             ttft_seconds=figures["ttft"], e2e_latency_seconds=figures["e2e"],
                             generated_tokens=figures["tokens"], tokens_per_s=figures["rate"])
