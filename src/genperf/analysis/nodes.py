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
        eligible = {n: ts for n, ts in by_node.items() if len(ts) >= MIN_NODE_TASKS}
        if len(eligible) < 2:
            continue
        for node, mine in sorted(eligible.items()):
            rest = [t for other, ts in eligible.items() if other != node for t in ts]
            finding = _compare(
                node, model_type, cls, mine=mine, rest=rest, throttled=throttled.get(node)
            )
            if finding is not None:
                found.append(finding)
    found.sort(key=lambda f: (-len(f.reasons), -(f.slower_percent or 0.0), f.node))
    return found


def _times(tasks: Iterable[TaskRecord]) -> float | None:
    return median(
        t.generation_time_seconds
        for t in tasks
        if t.status is TaskStatus.COMPLETED and t.generation_time_seconds is not None
    )


def _temperature(tasks: Iterable[TaskRecord]) -> float | None:
    return median(
        t.peak_gpu_temperature_celsius for t in tasks if t.peak_gpu_temperature_celsius is not None
    )


def _failure_rate(tasks: Sequence[TaskRecord]) -> float:
    failed = sum(1 for t in tasks if t.status is not TaskStatus.COMPLETED)
    return failed / len(tasks) if tasks else 0.0


def _compare(
    node: str,
    model_type: str,
    cls: str,
    *,
    mine: Sequence[TaskRecord],
    rest: Sequence[TaskRecord],
    throttled: float | None,
) -> NodeFinding | None:
    reasons: list[str] = []
    own, fleet = _times(mine), _times(rest)
    slower = None
    if own is not None and fleet:
        slower = 100.0 * (own / fleet - 1.0)
        if own >= SLOW_FACTOR * fleet:
            reasons.append("slow")
    rate, fleet_rate = _failure_rate(mine), _failure_rate(rest)
    if rate >= fleet_rate + FAILURE_GAP and rate >= 2 * fleet_rate:
        reasons.append("failures")
    hot, fleet_hot = _temperature(mine), _temperature(rest)
    if hot is not None and fleet_hot is not None and hot >= fleet_hot + HOT_GAP_CELSIUS:
        reasons.append("hot")
    if not reasons:
        return None
    return NodeFinding(
        node=node,
        model_type=model_type,
        resolution_class=cls,
        tasks=len(mine),
        median_seconds=own,
        fleet_median_seconds=fleet,
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
