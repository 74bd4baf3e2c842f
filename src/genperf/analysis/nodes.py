"""Node comparison: a node whose tasks stand out from the rest of the fleet's.

Tasks are compared only with tasks of the same model type and resolution class run on other
nodes, so a node that happens to get the 1080p work is not called slow. For each such group
with at least two nodes of ``MIN_NODE_TASKS`` finished tasks, a node stands out when

* its median generation time is at least ``SLOW_FACTOR`` times the median of the other
  nodes' tasks (successful ones), or
* its failure rate is at least ``FAILURE_GAP`` above the other nodes' and twice theirs, or
* its median peak GPU temperature is ``HOT_GAP_CELSIUS`` above the other nodes'.

The evidence adds each flagged node's share of samples with a thermally throttled GPU (its
own samples), the likeliest hardware cause. Everything is read from the window's task
records (every task, or the window's pseudo-random sample when it is large: the Python and
SQL paths give the same records) and system samples, so both paths agree.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from genperf.analysis.stats import median
from genperf.records import SystemSample, TaskRecord, TaskStatus
from genperf.tally import thermal_throttled

MIN_NODE_TASKS = 5  # finished tasks of a group a node needs to be compared
SLOW_FACTOR = 1.25  # median time this many times the rest of the fleet's
FAILURE_GAP = 0.10  # failure rate this much above the rest of the fleet's (and twice it)
HOT_GAP_CELSIUS = 10.0  # median peak GPU temperature this much above the rest's


@dataclass(frozen=True, slots=True)
class NodeFinding:
    """One node of one model x resolution class group that stands out, with the numbers."""

    node: str
    model_type: str
    resolution_class: str
    tasks: int  # the node's finished tasks in the group (of those read)
    median_seconds: float | None
    fleet_median_seconds: float | None
    slower_percent: float | None  # how much slower than the fleet, when it is
    failure_rate: float
    fleet_failure_rate: float
    median_temperature_celsius: float | None
    fleet_median_temperature_celsius: float | None
    throttled_sample_share: float | None  # the node's samples with a thermally throttled GPU
    reasons: tuple[str, ...]  # "slow", "failures", "hot"

    @property
    def summary(self) -> str:
        parts: list[str] = []
        what = f"{self.resolution_class} {self.model_type}"
        if "slow" in self.reasons and self.slower_percent is not None:
            parts.append(
                f"{what} median {self.slower_percent:.0f} % slower than the fleet "
                f"over {self.tasks} tasks"
            )
        if "failures" in self.reasons:
            parts.append(
                f"{what} failure rate {100 * self.failure_rate:.0f} % against the fleet's "
                f"{100 * self.fleet_failure_rate:.0f} % over {self.tasks} tasks"
            )
        if "hot" in self.reasons and self.median_temperature_celsius is not None:
            parts.append(
                f"median peak GPU temperature {self.median_temperature_celsius:.0f} °C against "
                f"the fleet's {self.fleet_median_temperature_celsius or 0:.0f} °C"
            )
        if self.throttled_sample_share:
            parts.append(
                f"GPU thermal throttling in {100 * self.throttled_sample_share:.0f} % of samples"
            )
        return f"{self.node}: " + "; ".join(parts)


def compare_nodes(
    tasks: Iterable[TaskRecord], samples: Sequence[SystemSample] = ()
) -> list[NodeFinding]:
    """The nodes that stand out, worst first (most reasons, then slowest)."""
    groups: dict[tuple[str, str], dict[str, list[TaskRecord]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for t in tasks:
        if t.status is not TaskStatus.RUNNING:
            groups[(t.model_type, t.resolution_class)][t.node].append(t)
    throttled = _throttled_shares(samples)
    found: list[NodeFinding] = []
    for (model_type, cls), by_node in sorted(groups.items()):
        eligible = {n: _Values.of(ts) for n, ts in by_node.items() if len(ts) >= MIN_NODE_TASKS}
        if len(eligible) < 2:
            continue
        fleet = _Values.total(eligible.values())
        for node, mine in sorted(eligible.items()):
            finding = _compare(
                node, model_type, cls, mine=mine, fleet=fleet, throttled=throttled.get(node)
            )
            if finding is not None:
                found.append(finding)
    found.sort(key=lambda f: (-len(f.reasons), -(f.slower_percent or 0.0), f.node))
    return found


@dataclass(frozen=True, slots=True)
class _Values:
    """What the comparison reads of some finished tasks, sorted once: each node's, and the
    group's whole (the rest of the fleet is the whole without the node, computed by
    :func:`_median_without` instead of copying every other node's tasks for each node)."""

    tasks: int
    failed: int
    times: list[float]  # completed tasks' generation times, sorted
    temperatures: list[float]  # sorted

    @classmethod
    def of(cls, tasks: Sequence[TaskRecord]) -> _Values:
        return cls(
            len(tasks),
            sum(1 for t in tasks if t.status is not TaskStatus.COMPLETED),
            sorted(
                t.generation_time_seconds
                for t in tasks
                if t.status is TaskStatus.COMPLETED and t.generation_time_seconds is not None
            ),
            sorted(
                t.peak_gpu_temperature_celsius
                for t in tasks
                if t.peak_gpu_temperature_celsius is not None
            ),
        )

    @classmethod
    def total(cls, parts: Iterable[_Values]) -> _Values:
        parts = list(parts)
        return cls(
            sum(p.tasks for p in parts),
            sum(p.failed for p in parts),
            sorted(v for p in parts for v in p.times),
            sorted(v for p in parts for v in p.temperatures),
        )


def _median_without(whole: list[float], part: list[float]) -> float | None:
    """The median of the multiset ``whole`` less ``part`` (both sorted; ``part`` within
    ``whole``), as ``statistics.median`` gives it, in O(log^2 n)."""
    n = len(whole) - len(part)
    if n <= 0:
        return None

    def kth(k: int) -> float:  # the k-th smallest (0-based) of whole less part
        lo, hi = 0, len(whole) - 1
        while lo < hi:
            mid = (lo + hi) // 2
            v = whole[mid]
            if bisect_right(whole, v) - bisect_right(part, v) >= k + 1:
                hi = mid
            else:
                lo = mid + 1
        return whole[lo]

    if n % 2:
        return float(kth(n // 2))
    return (kth(n // 2 - 1) + kth(n // 2)) / 2.0


def _median(values: list[float]) -> float | None:
    return median(values) if values else None


def _rate(failed: int, tasks: int) -> float:
    return failed / tasks if tasks else 0.0


def _compare(
    node: str,
    model_type: str,
    cls: str,
    *,
    mine: _Values,
    fleet: _Values,
    throttled: float | None,
) -> NodeFinding | None:
    reasons: list[str] = []
    own, rest_time = _median(mine.times), _median_without(fleet.times, mine.times)
    slower = None
    if own is not None and rest_time:
        slower = 100.0 * (own / rest_time - 1.0)
        if own >= SLOW_FACTOR * rest_time:
            reasons.append("slow")
    rate = _rate(mine.failed, mine.tasks)
    fleet_rate = _rate(fleet.failed - mine.failed, fleet.tasks - mine.tasks)
    if rate >= fleet_rate + FAILURE_GAP and rate >= 2 * fleet_rate:
        reasons.append("failures")
    hot = _median(mine.temperatures)
    fleet_hot = _median_without(fleet.temperatures, mine.temperatures)
    if hot is not None and fleet_hot is not None and hot >= fleet_hot + HOT_GAP_CELSIUS:
        reasons.append("hot")
    if not reasons:
        return None
    return NodeFinding(
        node=node,
        model_type=model_type,
        resolution_class=cls,
        tasks=mine.tasks,
        median_seconds=own,
        fleet_median_seconds=rest_time,
        slower_percent=slower if slower is not None and slower > 0 else None,
        failure_rate=rate,
        fleet_failure_rate=fleet_rate,
        median_temperature_celsius=hot,
        fleet_median_temperature_celsius=fleet_hot,
        throttled_sample_share=throttled,
        reasons=tuple(reasons),
    )


def _throttled_shares(samples: Iterable[SystemSample]) -> dict[str, float]:
    """Per node: the share of its samples in which a GPU was thermally throttled."""
    seen: dict[str, int] = defaultdict(int)
    hit: dict[str, int] = defaultdict(int)
    for s in samples:
        seen[s.node] += 1
        if any(thermal_throttled(g.throttle_reasons or ()) for g in s.gpus):
            hit[s.node] += 1
    return {node: hit[node] / n for node, n in seen.items() if n}
