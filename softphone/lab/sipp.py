"""SIPp (Debian ``sip-tester``) as the lab's load generator, on 127.0.0.1.

:class:`Sipp` runs one of the scenarios beside this module (``sipp/*.xml``) in the foreground
(``-nostdin``) against a phone, with SIPp's statistics file (``-trace_stat``) and one line per
call of the scenario's response-time measure (``-trace_rtt -rtt_freq 1``):

- ``scanner_flood``: an INVITE to a user that is not the phone's (one per line of ``users``),
  the 404 (RTD "answer"), the ACK;
- ``call``: INVITE with a PCMU offer, 200 (RTD "answer"), ACK, the call held for ``call_ms``
  (with RTP from ``rtp_wav``, a mu-law WAV, when given), BYE, 200;
- ``replacing``: the same call with ``Replaces: <keys["replaces"]>`` (RFC 3891), as the
  transferee of an attended transfer sends it to the target;
- ``refer_replaces``: the transferor of an attended transfer: a call, then REFER with
  ``Refer-To: <keys["target"]?Replaces=keys["replaces"]>``, 202, two NOTIFYs (the second must
  report 200) answered, BYE, 200;
- ``prack_uas`` (``remote`` None: SIPp waits for the phone's call): a PBX that answers with a
  reliable 183 (RFC 3262), wants the PRACK, answers 200 with ``Session-Expires:
  <session_expires>;refresher=uac`` (RFC 4028) and wants the phone's refresh as UPDATE;
- ``prack_uac``: a PBX that calls with ``Require: 100rel`` and ``Session-Expires:
  <session_expires>;refresher=uac``, PRACKs the phone's reliable 180, then never refreshes: the
  phone must end the call with BYE.

A scenario fails (SIPp exits non-zero) when a message is not the one it expects, or lacks what
its ``check_it`` expressions look for.

``rate`` calls every ``rate_period_ms``. A rate ramp is SIPp's own: ``rate`` to start, ``rate_increase`` every ``rate_period_s`` up to
``rate_max``. :meth:`Sipp.wait` returns a :class:`SippResult`: SIPp's cumulative counters from
the last line of the statistics file and every call's "answer" time.
"""

from __future__ import annotations

import contextlib
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Final, Literal

from softphone.lab.process import HOST, LabError, LabProcess, find_binary, free_port_pair

__all__ = ["Scenario", "Sipp", "SippResult", "percentile", "scenario_text"]

Scenario = Literal["scanner_flood", "call", "replacing", "refer_replaces", "prack_uas", "prack_uac"]
_MEDIA_ACTION: Final = (
    '  <nop>\n    <action>\n      <exec rtp_stream="{wav},-1,0"/>\n    </action>\n  </nop>\n'
)


def scenario_text(name: Scenario, *, rtp_wav: Path | None = None, session_expires: int = 90) -> str:
    """The scenario's XML with its placeholders filled: the RTP stream of a ``call`` (or none),
    the session interval of the ``prack_*`` ones."""
    text = resources.files(__package__).joinpath("sipp", f"{name}.xml").read_text("utf-8")
    media = _MEDIA_ACTION.format(wav=rtp_wav) if rtp_wav is not None else ""
    port = "[rtpstream_audio_port]" if rtp_wav is not None else "[media_port]"
    body = text.split("-->", 1)
    body[-1] = body[-1].replace("@@MEDIA@@", media).replace("@@MEDIA_PORT@@", port)
    body[-1] = body[-1].replace("@@SE@@", str(session_expires))
    body[-1] = body[-1].replace("@@SE_MS@@", str(session_expires * 1000))
    return "-->".join(body)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) by the nearest-rank method; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.999999) - 1))
    return ordered[index]


@dataclass(frozen=True, slots=True, kw_only=True)
class SippResult:
    exit_code: int | None
    created: int
    successful: int
    failed: int
    timed_out: int  # no answer at all (receive timeout, or every UDP retransmission used)
    unexpected: int  # a message the scenario did not expect (e.g. 486 where 200 was due)
    retransmissions: int
    elapsed_s: float
    answer_ms: tuple[float, ...]  # per call: the scenario's "answer" RTD

    @property
    def unanswered(self) -> int:
        """Calls SIPp made that never got their answer (timeouts), or never finished."""
        return self.created - len(self.answer_ms)

    def answer_percentile(self, q: float) -> float | None:
        return percentile(self.answer_ms, q)

    @property
    def answer_mean_ms(self) -> float | None:
        return statistics.fmean(self.answer_ms) if self.answer_ms else None


def _duration_s(text: str) -> float:
    """SIPp's ``HH:MM:SS`` or ``HH:MM:SS:uuuuuu`` as seconds."""
    parts = [int(p) for p in text.strip().split(":") if p.isdigit()]
    hours, minutes, seconds = [*parts, 0, 0, 0][:3]
    micros = parts[3] if len(parts) > 3 else 0
    return hours * 3600 + minutes * 60 + seconds + micros / 1e6


def read_stats(stat_file: Path, rtt_files: Sequence[Path], exit_code: int | None) -> SippResult:
    """A SippResult from SIPp's ``-trace_stat`` file (header line, then one line per period;
    the last is the end) and ``-trace_rtt`` files (``Date_ms;response_time_ms;rtd_no``)."""
    lines = [ln for ln in stat_file.read_text(errors="replace").splitlines() if ln.strip()]
    if len(lines) < 2:
        raise LabError(f"SIPp wrote no statistics to {stat_file}")
    names = lines[0].rstrip(";").split(";")
    values = dict(zip(names, lines[-1].rstrip(";").split(";"), strict=False))

    def count(name: str) -> int:
        text = values.get(name, "0").strip()
        return int(text) if text.isdigit() else 0

    answers: list[float] = []
    for path in rtt_files:
        for row in path.read_text(errors="replace").splitlines()[1:]:
            fields = row.split(";")
            with contextlib.suppress(IndexError, ValueError):
                answers.append(float(fields[1]))
    return SippResult(
        exit_code=exit_code,
        created=count("OutgoingCall(C)"),
        successful=count("SuccessfulCall(C)"),
        failed=count("FailedCall(C)"),
        timed_out=count("FailedTimeoutOnRecv(C)") + count("FailedMaxUDPRetrans(C)"),
        unexpected=count("FailedUnexpectedMessage(C)"),
        retransmissions=count("Retransmissions(C)"),
        elapsed_s=_duration_s(values.get("ElapsedTime(C)", "0")),
        answer_ms=tuple(answers),
    )


class Sipp:
    """One SIPp run against ``remote`` (host, port); see the module docstring."""

    def __init__(
        self,
        workdir: Path,
        scenario: Scenario,
        remote: tuple[str, int] | None,
        *,
        rate: float,
        calls: int,
        rate_period_ms: int = 1000,
        service: str = "service",
        limit: int | None = None,
        call_ms: int = 0,
        rate_increase: float | None = None,
        rate_period_s: int = 1,
        rate_max: float | None = None,
        users: Sequence[str] | None = None,
        rtp_wav: Path | None = None,
        recv_timeout_ms: int = 10_000,
        timeout_s: float = 600.0,
        local_host: str = HOST,
        prefix: Sequence[str] = (),
        keys: Mapping[str, str] | None = None,
        session_expires: int = 90,
    ) -> None:
        """``local_host``: the address SIPp sends from (SIP and RTP); ``prefix``: what runs it
        (``ip netns exec NS`` for a network namespace); ``keys``: the scenario's ``[name]``
        values (SIPp's ``-key``)."""
        self.workdir = workdir
        self.scenario: Scenario = scenario
        self.remote = remote
        self.rate = rate
        self.rate_period_ms = rate_period_ms
        self.calls = calls
        self.service = service
        self.limit = limit
        self.call_ms = call_ms
        self.rate_increase = rate_increase
        self.rate_period_s = rate_period_s
        self.rate_max = rate_max
        self.users = users
        self.rtp_wav = rtp_wav
        self.recv_timeout_ms = recv_timeout_ms
        self.timeout_s = timeout_s
        self.local_host = local_host
        self.prefix = tuple(prefix)
        self.keys = dict(keys or {})
        self.session_expires = session_expires
        self.local_port = 0
        self._process: LabProcess | None = None

    def argv(self, binary: str) -> list[str]:
        self.workdir.mkdir(parents=True, exist_ok=True)
        xml = self.workdir / f"{self.scenario}.xml"
        xml.write_text(
            scenario_text(self.scenario, rtp_wav=self.rtp_wav, session_expires=self.session_expires)
        )
        if not self.local_port:  # a server scenario's port is chosen before it starts
            self.local_port = free_port_pair()
        remote = [] if self.remote is None else [f"{self.remote[0]}:{self.remote[1]}"]
        argv = [*self.prefix, binary, *remote, "-sf", str(xml), "-s", self.service]
        argv += ["-i", self.local_host, "-mi", self.local_host, "-p", str(self.local_port)]
        argv += ["-mp", str(free_port_pair())]
        argv += ["-r", f"{self.rate:g}", "-rp", str(self.rate_period_ms)]
        argv += ["-m", str(self.calls), "-d", str(self.call_ms)]
        argv += ["-l", str(self.limit if self.limit is not None else max(self.calls, 1))]
        argv += ["-fd", str(self.rate_period_s)]
        if self.rate_increase is not None:
            argv += ["-rate_increase", f"{self.rate_increase:g}"]
        if self.rate_max is not None:  # and stay there: without -no_rate_quit SIPp stops
            argv += ["-rate_max", f"{self.rate_max:g}", "-no_rate_quit"]
        if self.users is not None:
            inject = self.workdir / "users.csv"
            inject.write_text("SEQUENTIAL\n" + "".join(f"{u}\n" for u in self.users))
            argv += ["-inf", str(inject)]
        argv += ["-recv_timeout", str(self.recv_timeout_ms), "-timeout", f"{self.timeout_s:g}s"]
        # SIPp's own socket buffers as large as the phones': a starved SIPp must not drop answers.
        argv += ["-buff_size", str(4 * 1024 * 1024)]
        for name, value in self.keys.items():
            argv += ["-key", name, value]
        argv += ["-nostdin", "-trace_stat", "-stf", str(self.stat_file)]
        argv += ["-trace_rtt", "-rtt_freq", "1", "-trace_err"]
        return argv

    @property
    def stat_file(self) -> Path:
        return self.workdir / "sipp-stats.csv"

    def start(self) -> Sipp:
        binary = find_binary("sipp", "sip-tester")
        for old in [self.stat_file, *self.workdir.glob("*_rtt.csv")]:
            old.unlink(missing_ok=True)
        self._process = LabProcess(
            self.argv(binary), name="sipp", cwd=self.workdir, log_path=self.workdir / "sipp.log"
        )
        return self

    @property
    def pid(self) -> int:
        if self._process is None:
            raise LabError("sipp was never started")
        return self._process.pid

    def alive(self) -> bool:
        return self._process is not None and self._process.alive()

    def wait(self, timeout_s: float | None = None) -> SippResult:
        """Until SIPp exits by itself (``-m`` calls made and ended, or ``-timeout``); its result."""
        if self._process is None:
            raise LabError("sipp was never started")
        limit = timeout_s if timeout_s is not None else self.timeout_s + 60
        try:
            code: int | None = self._process.proc.wait(timeout=limit)
        except Exception as exc:  # subprocess.TimeoutExpired: stop it, report what it has
            self._process.stop()
            raise LabError(f"sipp did not finish within {limit:.0f} s") from exc
        self._process.stop()
        return read_stats(self.stat_file, sorted(self.workdir.glob("*_rtt.csv")), code)

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()
