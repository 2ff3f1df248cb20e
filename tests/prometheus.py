"""Read `/metrics` as Prometheus does, for tests: parse with prometheus_client's own text-format parser.

`scrape(stack.webhook_url)` before and after a story, then `value(after, name, **labels) >
value(before, name, **labels)`: the counters moved.
"""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

# (sample name, its labels, its value) for every sample of an exposition
Samples = list[tuple[str, dict[str, str], float]]


def parse(text: str) -> Samples:
    """Every sample; the parser raises on anything that is not valid text format."""
    return [
        (sample.name, dict(sample.labels), float(sample.value))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def scrape(base_url: str, timeout: float = 10.0) -> Samples:
    """GET `{base_url}/metrics` of a running receiver (`promoter webhook`), parsed."""
    answer = httpx.get(f"{base_url.rstrip('/')}/metrics", timeout=timeout)
    answer.raise_for_status()
    return parse(answer.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels` (0 when none matches)."""
    return sum(
        found
        for sample, have, found in samples
        if sample == name and all(have.get(key) == wanted for key, wanted in labels.items())
    )


def present(samples: Samples, name: str, **labels: str) -> bool:
    return any(
        sample == name and all(have.get(key) == wanted for key, wanted in labels.items())
        for sample, have, _ in samples
    )
