"""Checks and custom metrics (k6's `check` and `Counter`/`Gauge`/`Rate`/`Trend`), shown in
the runner's summary and usable in thresholds."""

from wit_world.imports import metrics as _metrics


def check(name, passed):
    """Records whether the named check passed; returns `passed` so it can be tested."""
    _metrics.check(str(name), bool(passed))
    return bool(passed)


def _tags(tags):
    return [(str(k), str(v)) for k, v in (tags or {}).items()]


class Metric:
    """A custom metric: `Metric.trend("cart_ms").add(12.5, tags={"page": "cart"})`."""

    def __init__(self, name, kind):
        self.name = name
        self.kind = kind

    @classmethod
    def counter(cls, name):
        """A running sum and its rate per second."""
        return cls(name, _metrics.MetricKind.COUNTER)

    @classmethod
    def gauge(cls, name):
        """The last value added, with the smallest and largest."""
        return cls(name, _metrics.MetricKind.GAUGE)

    @classmethod
    def rate(cls, name):
        """The share of values that are not zero (add True/False)."""
        return cls(name, _metrics.MetricKind.RATE)

    @classmethod
    def trend(cls, name):
        """The distribution of the values: average, minimum, maximum, percentiles."""
        return cls(name, _metrics.MetricKind.TREND)

    def add(self, value, tags=None):
        _metrics.add(self.name, self.kind, float(value), _tags(tags))
