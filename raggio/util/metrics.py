"""``ray.util.metrics``: application metrics, exported by the node where they are recorded.

``Counter``, ``Gauge`` and ``Histogram`` take Ray's arguments and raise its
errors. A value is recorded in the calling process (``core/app_metrics.py``)
and its node manager exports it on the node's Prometheus endpoint as
``ray_<name>`` (counters ``ray_<name>_total``), with its tags as labels and
the node's ``ip``, ``SessionName`` and ``NodeId``. Counters and histograms
are summed over the node's processes (what an exited worker counted stays
counted); a gauge is one series per process, labelled ``WorkerId``, and goes
with the process.

One departure from Ray 2.60, which warns and then silently drops a metric
with an invalid name: raggio raises ``ValueError`` naming the rule, so that a
dashboard does not stay empty for a typo.
"""

from __future__ import annotations

import re

from raggio.common.metric_records import COUNTER, GAUGE, HISTOGRAM
from raggio.core.app_metrics import RECORDER

__all__ = ["Counter", "Gauge", "Histogram"]

#: Prometheus's rule for metric names (Ray checks the same).
_VALID_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


class Metric:
    """What the three kinds share: a name, a description, tag keys and default tags."""

    _kind = ""

    def __init__(self, name: str, description: str = "", tag_keys: tuple | None = None):
        if len(name) == 0:
            raise ValueError("Empty name is not allowed. Please provide a metric name.")
        if not _VALID_NAME.match(name) or ":" in name:
            raise ValueError(
                f"Invalid metric name: {name!r}. Metric names can only contain letters, "
                "numbers and _, and cannot start with a number.")
        self._name = name
        self._description = description
        self._default_tags: dict[str, str] = {}
        self._tag_keys = tag_keys or tuple()
        if not isinstance(self._tag_keys, tuple):
            raise TypeError(f"tag_keys should be a tuple type, got: {type(self._tag_keys)}")
        for key in self._tag_keys:
            if not isinstance(key, str):
                raise TypeError(f"Tag keys must be str, got {type(key)}.")
        RECORDER.define(name, self._kind, description, self._tag_keys, self._boundaries())

    def _boundaries(self) -> list | None:
        return None

    def set_default_tags(self, default_tags: dict[str, str]) -> "Metric":
        """Tags used by every record that does not give them; returns the metric itself.

        Raises:
            ValueError: a key that is not one of ``tag_keys``.
            TypeError: a value that is not a str.
        """
        for key, value in default_tags.items():
            if key not in self._tag_keys:
                raise ValueError(f"Unrecognized tag key {key}.")
            if not isinstance(value, str):
                raise TypeError(f"Tag values must be str, got {type(value)}.")
        self._default_tags = default_tags
        return self

    def _tag_values(self, tags: dict[str, str] | None) -> tuple:
        """The record's tag values in ``tag_keys`` order.

        Raises:
            ValueError: a tag key that was not declared, or a declared one without a value.
            TypeError: a value that is not a str.
        """
        final = self._default_tags
        if tags:
            for key, value in tags.items():
                if not isinstance(value, str):
                    raise TypeError(f"Tag values must be str, got {type(value)}.")
                if key not in self._tag_keys:
                    raise ValueError(f"Unrecognized tag key {key}; the metric "
                                     f"{self._name!r} has tag_keys={self._tag_keys}.")
            final = {**final, **tags}
        missing = [key for key in self._tag_keys if key not in final]
        if missing:
            raise ValueError(f"Missing value for tag key(s): {','.join(missing)}.")
        return tuple(final[key] for key in self._tag_keys)

    @property
    def info(self) -> dict:
        return {"name": self._name, "description": self._description,
                "tag_keys": self._tag_keys, "default_tags": self._default_tags}

    def __reduce__(self):
        # Sent to a task or actor: the metric is declared again in that process.
        return type(self), (self._name, self._description, self._tag_keys)


def _number(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"value must be int or float, got {type(value)}.")
    return value


class Counter(Metric):
    """A cumulative count: ``inc(value=1.0, tags=None)`` with a positive ``value``."""

    _kind = COUNTER

    def inc(self, value: int | float = 1.0, tags: dict[str, str] | None = None) -> None:
        if _number(value) <= 0:
            raise ValueError(f"value must be >0, got {value}")
        RECORDER.add(self._name, self._tag_values(tags), value)


class Gauge(Metric):
    """A value that goes up and down: ``set(value, tags=None)`` (``None`` does nothing)."""

    _kind = GAUGE

    def set(self, value: int | float | None, tags: dict[str, str] | None = None) -> None:
        if value is None:
            return
        RECORDER.set(self._name, self._tag_values(tags), _number(value))


class Histogram(Metric):
    """A distribution over ``boundaries`` (positive, increasing): ``observe(value, tags=None)``."""

    _kind = HISTOGRAM

    def __init__(self, name: str, description: str = "", boundaries: list[float] | None = None,
                 tag_keys: tuple | None = None):
        if not boundaries:
            raise ValueError("boundaries argument should be provided when using the Histogram "
                             'class. e.g., Histogram("name", boundaries=[1.0, 2.0])')
        for index, boundary in enumerate(boundaries):
            if boundary <= 0:
                raise ValueError(f"Invalid `boundaries` argument at index {index}, "
                                 f"{boundaries}. Use positive values for the arguments.")
        if list(boundaries) != sorted(boundaries):
            raise ValueError(f"`boundaries` must increase: {boundaries}.")
        self.boundaries = list(boundaries)
        super().__init__(name, description, tag_keys)

    def _boundaries(self) -> list:
        return self.boundaries

    def observe(self, value: int | float, tags: dict[str, str] | None = None) -> None:
        RECORDER.observe(self._name, self._tag_values(tags), _number(value))

    @property
    def info(self) -> dict:
        return dict(super().info, boundaries=self.boundaries)

    def __reduce__(self):
        return Histogram, (self._name, self._description, self.boundaries, self._tag_keys)
