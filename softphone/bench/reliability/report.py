"""The campaign's one table: every figure against its target, with baresip's figure from the
same run where there is one, and the command that reproduces it.

Rows come from the parts (fuzz, load, scan, faults, soak) through the ``*_rows`` functions here;
:func:`table` prints them and :func:`missed` says whether any target was missed (the command's
exit status). A row without a target (``passed`` None) is a measurement shown for context.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from softphone.bench.reliability.faults import FaultResult
from softphone.bench.reliability.fuzz import FuzzResult
from softphone.bench.reliability.load import FloodFigures, HeldFigures, Phone, RampFigures
from softphone.bench.reliability.scan import ScanFigures
from softphone.bench.reliability.soak import SoakFigures

__all__ = [
    "Row",
    "dumps",
    "fault_rows",
    "flood_rows",
    "fuzz_rows",
    "held_rows",
    "missed",
    "ramp_rows",
    "read_rows",
    "scan_rows",
    "soak_rows",
    "table",
]

MAX_HELD_CPU_RATIO = 1.5
MAX_INVITE_TO_200_P99_MS = 100.0
MAX_SOAK_GROWTH_MB_PER_HOUR = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    area: str
    figure: str
    value: str
    target: str
    passed: bool | None
    baresip: str = ""
    command: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Row:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def dumps(rows: Sequence[Row], *, part: str | None = None) -> str:
    """The rows as the one JSON object ``--json`` prints (with the part's name when given)."""
    body: dict[str, Any] = {"benchmark": "reliability"}
    if part is not None:
        body["part"] = part
    body["rows"] = [r.to_json() for r in rows]
    return json.dumps(body)


def read_rows(paths: Iterable[Path], *, order: Sequence[str] = ()) -> list[Row]:
    """Rows written earlier: JSON files as :func:`dumps` makes them, or directories of them
    (``<part>.json``, taken in ``order``, then any others by name)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(path.glob("*.json"))
            rank = {name: i for i, name in enumerate(order)}
            files += sorted(found, key=lambda f: (rank.get(f.stem, len(rank)), f.name))
        else:
            files.append(path)
    rows: list[Row] = []
    for file in files:
        body = json.loads(file.read_text())
        if not isinstance(body, dict) or body.get("benchmark") != "reliability":
            raise ValueError(f"{file}: not the reliability campaign's rows")
        rows += [Row.from_json(r) for r in body["rows"]]
    return rows


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def fuzz_rows(results: Sequence[FuzzResult], command: str) -> list[Row]:
    rows = []
    for r in results:
        broken = [b.signature for b in r.broken] + [p.name for p in r.artifacts]
        capped = (
            "" if r.runs >= r.runs_asked else f" (stopped by the time limit at {r.seconds:.0f} s)"
        )
        value = f"{r.runs:,} inputs at {r.rate:,.0f}/s, {len(broken)} broken{capped}"
        if broken:
            value += ": " + "; ".join(broken)
        rows.append(
            Row(
                area="fuzz",
                figure=f"{r.target}: {r.entry}",
                value=value,
                target=f"{r.runs_asked:,} inputs, 0 broken",
                passed=r.clean,
                command=f"{command} --target {r.target}",
            )
        )
    return rows


def flood_rows(figures: Mapping[Phone, FloodFigures], command: str) -> list[Row]:
    sp, bs = figures["softphone"], figures["baresip"]
    return [
        Row(
            area="load",
            figure=f"scanner flood: {sp.sent:,} INVITEs to unknown users, unanswered",
            value=str(sp.unanswered),
            target="0",
            passed=sp.unanswered == 0 and sp.sent > 0,
            baresip=str(bs.unanswered),
            command=command,
        ),
        Row(
            area="load",
            figure="scanner flood: time to the 404, p50 / p99 / max",
            value=f"{_ms(sp.answer_p50_ms)} / {_ms(sp.answer_p99_ms)} / {_ms(sp.answer_max_ms)}",
            target="-",
            passed=None,
            baresip=f"{_ms(bs.answer_p50_ms)} / {_ms(bs.answer_p99_ms)} / {_ms(bs.answer_max_ms)}",
            command=command,
        ),
        Row(
            area="load",
            figure="scanner flood: calls offered to the user (rang), CPU s",
            value=f"{sp.rang}, {sp.cpu_s:.1f} s",
            target="0 rang",
            passed=sp.rang == 0,
            baresip=f"{bs.rang}, {bs.cpu_s:.1f} s",
            command=command,
        ),
    ]


def ramp_rows(figures: Mapping[Phone, RampFigures], command: str) -> list[Row]:
    sp, bs = figures["softphone"], figures["baresip"]
    p99_ok = sp.invite_to_200_p99_ms is not None and (
        sp.invite_to_200_p99_ms < MAX_INVITE_TO_200_P99_MS
    )
    return [
        Row(
            area="load",
            figure=f"call-rate ramp to {sp.max_rate:g}/s of 1 s calls: failed of {sp.calls:,}",
            value=str(sp.failed),
            target="0",
            passed=sp.failed == 0 and sp.calls > 0,
            baresip=f"{bs.failed} of {bs.calls:,}",
            command=command,
        ),
        Row(
            area="load",
            figure="call-rate ramp: INVITE to 200, p50 / p99",
            value=f"{_ms(sp.invite_to_200_p50_ms)} / {_ms(sp.invite_to_200_p99_ms)}",
            target=f"p99 < {MAX_INVITE_TO_200_P99_MS:.0f} ms",
            passed=p99_ok,
            baresip=f"{_ms(bs.invite_to_200_p50_ms)} / {_ms(bs.invite_to_200_p99_ms)}",
            command=command,
        ),
        *_drain_rows(sp, command),
        Row(
            area="load",
            figure="call-rate ramp: CPU s, and per call",
            value=f"{sp.cpu_s:.1f} s, {1000 * sp.cpu_s / max(sp.calls, 1):.1f} ms",
            target="-",
            passed=None,
            baresip=f"{bs.cpu_s:.1f} s, {1000 * bs.cpu_s / max(bs.calls, 1):.1f} ms",
            command=command,
        ),
    ]


def _drain_rows(sp: RampFigures, command: str) -> list[Row]:
    if sp.reported is None or sp.unended is None:
        return []
    return [
        Row(
            area="load",
            figure="event stream drained before exit (SIGTERM after the ramp): calls reported "
            "with their call_ended",
            value=f"{sp.reported - sp.unended:,} of {sp.reported:,}",
            target="all",
            passed=sp.unended == 0 and sp.reported > 0,
            command=command,
        )
    ]


def held_rows(figures: Mapping[Phone, HeldFigures], command: str) -> list[Row]:
    sp, bs = figures["softphone"], figures["baresip"]
    ratio = sp.cpu_ms_per_call_s / max(bs.cpu_ms_per_call_s, 1e-9)
    return [
        Row(
            area="load",
            figure=f"{sp.calls} held calls (RTP both ways), CPU ms per call-second",
            value=f"{sp.cpu_ms_per_call_s:.2f} ({ratio:.2f}x baresip)",
            target=f"<= {MAX_HELD_CPU_RATIO}x baresip",
            passed=ratio <= MAX_HELD_CPU_RATIO and sp.failed == 0,
            baresip=f"{bs.cpu_ms_per_call_s:.2f}",
            command=command,
        ),
        Row(
            area="load",
            figure=f"{sp.calls} held calls: RSS (idle), threads, open files",
            value=f"{sp.rss_mb:.0f} MB ({sp.rss_idle_mb:.0f}), {sp.threads}, {sp.fds}",
            target="-",
            passed=None,
            baresip=f"{bs.rss_mb:.0f} MB ({bs.rss_idle_mb:.0f}), {bs.threads}, {bs.fds}",
            command=command,
        ),
    ]


def scan_rows(figures: ScanFigures, command: str) -> list[Row]:
    found = ", ".join(f"{r.name} ({r.detail})" for r in figures.svmap_found) or "nothing"
    told = {m: users for m, users in figures.enumerated.items() if users}
    return [
        Row(
            area="scan",
            figure="svmap finds (device, User-Agent)",
            value=found,
            target="-",
            passed=None,
            command=command,
        ),
        Row(
            area="scan",
            figure="svwar INVITE/OPTIONS/REGISTER: users told apart",
            value=", ".join(f"{m}: {u}" for m, u in told.items()) or "none",
            target="none",
            passed=not told,
            command=command,
        ),
        Row(
            area="scan",
            figure=f"the phone rang during the scans and {figures.probes} probes",
            value=str(figures.rang),
            target="0",
            passed=figures.rang == 0,
            command=command,
        ),
        Row(
            area="scan",
            figure="probe: answers for our user and unknown ones differ",
            value="; ".join(figures.probe_differences) or "never",
            target="never",
            passed=not figures.probe_differences,
            command=command,
        ),
    ]


def fault_rows(results: Sequence[FaultResult], command: str) -> list[Row]:
    return [
        Row(
            area="fault",
            figure=f"{r.scenario}: {r.figure}",
            value=_s(r.recovery_s) + (f" ({r.detail})" if r.detail else ""),
            target="-" if r.target_s is None else f"<= {r.target_s:g} s",
            passed=r.passed if (r.target_s is not None or not r.ok) else None,
            command=command,
        )
        for r in results
    ]


def soak_rows(figures: SoakFigures, command: str) -> list[Row]:
    idle, end = figures.idle, figures.end
    growth = figures.rss_growth_mb_per_hour
    return [
        Row(
            area="soak",
            figure=f"{figures.seconds / 60:.0f} min, a call every few s: failed of {figures.calls}",
            value=str(figures.failed),
            target="0",
            passed=figures.failed == 0 and figures.calls > 0,
            command=command,
        ),
        Row(
            area="soak",
            figure="RSS: second half start / end / max, growth fitted over the second half",
            value=f"{figures.rss_mid_mb:.1f} / {figures.rss_end_mb:.1f} / "
            f"{figures.rss_max_mb:.1f} MB, {growth:+.1f} MB/h",
            target=f"<= {MAX_SOAK_GROWTH_MB_PER_HOUR:g} MB/h",
            passed=growth <= MAX_SOAK_GROWTH_MB_PER_HOUR,
            command=command,
        ),
        Row(
            area="soak",
            figure="threads and open files: idle before the first call -> at the end",
            value=f"{idle.threads} -> {end.threads}, {idle.fds} -> {end.fds}",
            target="no growth",
            passed=end.threads <= idle.threads and end.fds <= idle.fds,
            command=command,
        ),
        *_soak_drain_rows(figures, command),
        Row(
            area="soak",
            figure="CPU over the soak",
            value=f"{figures.cpu_percent:.1f} % of a core",
            target="-",
            passed=None,
            command=command,
        ),
    ]


def _soak_drain_rows(figures: SoakFigures, command: str) -> list[Row]:
    if figures.reported is None or figures.unended is None:
        return []
    return [
        Row(
            area="soak",
            figure="event stream drained before exit (SIGTERM): calls reported with their "
            "call_ended",
            value=f"{figures.reported - figures.unended:,} of {figures.reported:,}",
            target="all",
            passed=figures.unended == 0 and figures.reported > 0,
            command=command,
        )
    ]


def missed(rows: Sequence[Row]) -> list[Row]:
    return [r for r in rows if r.passed is False]


def table(rows: Sequence[Row]) -> str:
    """Markdown: one line per figure."""
    out = [
        "| area | figure | softphone | target | result | baresip (same run) | command |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        verdict = "-" if r.passed is None else ("PASS" if r.passed else "FAIL")
        out.append(
            f"| {r.area} | {r.figure} | {r.value} | {r.target} | {verdict} | {r.baresip or '-'} "
            f"| `{r.command}` |"
        )
    return "\n".join(out)
