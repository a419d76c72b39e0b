"""Reading GET /metrics back: the Prometheus exposition parsed with prometheus_client's own parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


class Samples(dict[tuple[str, tuple[tuple[str, str], ...]], float]):
    """Parsed exposition: (sample name, sorted labels) → value, with a forgiving lookup."""

    def get_value(self, name: str, **labels: str) -> float:
        """Sum of the samples called `name` whose labels include `labels` (0 when none)."""
        total = 0.0
        for (sample, sample_labels), value in self.items():
            if sample != name:
                continue
            have = dict(sample_labels)
            if all(have.get(k) == v for k, v in labels.items()):
                total += value
        return total


def parse_metrics(text: str) -> Samples:
    samples = Samples()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples
