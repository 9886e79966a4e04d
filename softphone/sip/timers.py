"""SIP transaction timers (RFC 3261 §17 and Table 4 of Appendix A; RFC 6026 §7).

Timers are deadlines, never tasks: the transactions keep a
``dict[Timer, float]`` of absolute deadlines and the transport driver arms one ``loop.call_at``
for the earliest. This module only knows durations and intervals; it reads no clock.

    Timer  default        meaning                                          section
    A      T1, doubling   INVITE request retransmit (unreliable only)      §17.1.1.2
    B      64*T1          INVITE transaction timeout                       §17.1.1.2
    D      32 s / 0       wait for response retransmits after ACK          §17.1.1.2
    E      T1, cap T2     non-INVITE request retransmit (unreliable only)  §17.1.2.2
    F      64*T1          non-INVITE transaction timeout                   §17.1.2.2
    G      T1, cap T2     INVITE final response retransmit                 §17.2.1
    H      64*T1          wait for ACK receipt                             §17.2.1
    I      T4 / 0         wait for ACK retransmits                         §17.2.1
    J      64*T1 / 0      wait for non-INVITE request retransmits          §17.2.2
    K      T4 / 0         wait for non-INVITE response retransmits         §17.1.2.2
    L      64*T1          INVITE server: wait in Accepted                  RFC 6026 §7.1
    M      64*T1          INVITE client: wait in Accepted                  RFC 6026 §7.2

"/ 0" means the timer is zero when the transport is reliable (TCP, TLS). Timer C belongs to
proxies (§16.6) and is not modelled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Final

# RFC 3261 §17.1.1.2: "Timer D ... at least 32 seconds for unreliable transports". It is a fixed
# value, not a multiple of T1 (it covers the server's 64*T1 of default-T1 retransmissions).
TIMER_D_UNRELIABLE: Final = 32.0


class Timer(Enum):
    """The RFC 3261 §17 transaction timers plus RFC 6026's L and M (value = RFC letter)."""

    A = "A"
    B = "B"
    D = "D"
    E = "E"
    F = "F"
    G = "G"
    H = "H"
    I = "I"  # noqa: E741 -- the RFC's name
    J = "J"
    K = "K"
    L = "L"
    M = "M"


@dataclass(frozen=True, slots=True)
class TimerConfig:
    """T1, T2 and T4 (RFC 3261 §17.1.1.1 and Table 4), in seconds; everything else derives.

    T1 is the RTT estimate (default 500 ms), T2 the cap on non-INVITE and response retransmit
    intervals (4 s), T4 the time a message may linger in the network (5 s). §17.1.1.1 allows
    changing T1 (and T2) e.g. on private networks; a smaller T1 shortens every timer but D.
    """

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    # RFC 4028 §4: the smallest session interval we accept (Min-SE), 90 s. Like T1 it may be
    # lowered on a private network: the lab does, to walk a session refresh in seconds.
    min_se: int = 90

    def __post_init__(self) -> None:
        if not (self.t1 > 0 and self.t2 >= self.t1 and self.t4 >= 0 and self.min_se >= 1):
            raise ValueError(f"need 0 < t1 <= t2, t4 >= 0 and min_se >= 1, got {self}")

    @property
    def timeout(self) -> float:
        """64*T1: the transaction timeout shared by Timers B, F, H, J, L and M."""
        return 64 * self.t1

    @property
    def silence_notice(self) -> float:
        """4*T1 (2 s by default): how long a request may go without any answer, not even 100
        Trying, before the person is told the server is silent. Not an RFC 3261 timer: Timers B
        and F give up only after 64*T1 (32 s), which is a long time to look at "registering"
        or "calling" without knowing why. Over UDP this is after the first two retransmissions
        (at T1 and 3*T1)."""
        return 4 * self.t1

    @property
    def timer_b(self) -> float:
        return self.timeout

    @property
    def timer_f(self) -> float:
        return self.timeout

    @property
    def timer_h(self) -> float:
        return self.timeout

    @property
    def timer_j(self) -> float:
        """Unreliable transports; reliable ones use 0 (see ``duration``)."""
        return self.timeout

    @property
    def timer_l(self) -> float:
        return self.timeout

    @property
    def timer_m(self) -> float:
        return self.timeout

    @property
    def timer_d(self) -> float:
        """Unreliable transports; reliable ones use 0 (see ``duration``)."""
        return TIMER_D_UNRELIABLE

    @property
    def timer_i(self) -> float:
        """Unreliable transports; reliable ones use 0 (see ``duration``)."""
        return self.t4

    @property
    def timer_k(self) -> float:
        """Unreliable transports; reliable ones use 0 (see ``duration``)."""
        return self.t4

    def duration(self, timer: Timer, *, reliable: bool) -> float:
        """How long ``timer`` runs when first armed (Table 4 of RFC 3261, RFC 6026 §7).

        For the retransmission timers (A, E, G) this is the first interval, T1.
        """
        if reliable and timer in _ZERO_WHEN_RELIABLE:
            return 0.0
        return _DURATIONS[timer](self)

    def next_interval(self, timer: Timer, previous: float, *, proceeding: bool = False) -> float:
        """The interval after ``previous`` for a retransmission timer.

        Timer A doubles without a cap (§17.1.1.2). Timer E doubles up to T2, and is T2 flat once
        the transaction is in Proceeding (§17.1.2.2). Timer G doubles up to T2 (§17.2.1), as does
        the 2xx retransmission of the INVITE server in Accepted (§13.3.1.4), which reuses G.
        """
        if timer is Timer.A:
            return 2 * previous
        if timer is Timer.E and proceeding:
            return self.t2
        if timer in (Timer.E, Timer.G):
            return min(2 * previous, self.t2)
        raise ValueError(f"Timer {timer.value} is not a retransmission timer")


_ZERO_WHEN_RELIABLE: Final[frozenset[Timer]] = frozenset({Timer.D, Timer.I, Timer.J, Timer.K})

_DURATIONS: Final[Mapping[Timer, Callable[[TimerConfig], float]]] = {
    Timer.A: lambda c: c.t1,
    Timer.B: lambda c: c.timer_b,
    Timer.D: lambda c: c.timer_d,
    Timer.E: lambda c: c.t1,
    Timer.F: lambda c: c.timer_f,
    Timer.G: lambda c: c.t1,
    Timer.H: lambda c: c.timer_h,
    Timer.I: lambda c: c.timer_i,
    Timer.J: lambda c: c.timer_j,
    Timer.K: lambda c: c.timer_k,
    Timer.L: lambda c: c.timer_l,
    Timer.M: lambda c: c.timer_m,
}
