"""NTP timestamps and the one time line of RTP streams (RFC 3550 §4, §6.4.1) (sans-IO).

Each RTP stream counts time in its own clock (90 kHz video, 8-48 kHz audio, from a random base);
the sender reports of RTCP pair one instant of that clock with the sender's wall clock in NTP
format. That pairing is what puts audio and video on one time line (lip sync), and what the
round-trip time of RFC 3550 §6.4.1 is measured in.
"""

from __future__ import annotations

from typing import Final

NTP_UNIX_OFFSET_S: Final = 2_208_988_800  # 1900-01-01 to 1970-01-01 (RFC 3550 §4)
_U32: Final = 0xFFFF_FFFF


def ntp_timestamp(unix_time_s: float) -> int:
    """64-bit NTP timestamp (RFC 3550 §4) for a Unix time in seconds."""
    seconds = int(unix_time_s // 1)
    fraction = int((unix_time_s - seconds) * (1 << 32))
    return ((seconds + NTP_UNIX_OFFSET_S) << 32 | fraction) & 0xFFFF_FFFF_FFFF_FFFF


def ntp_middle(ntp: int) -> int:
    """The middle 32 bits of an NTP timestamp: the LSR / RTT unit of 1/65536 s (§6.4.1)."""
    return (ntp >> 16) & _U32


def media_time(
    sender_report: tuple[int, int] | None, timestamp: int, clock_rate: int
) -> float | None:
    """When (NTP seconds) the sample with RTP ``timestamp`` was taken, from the stream's last
    sender report (RFC 3550 §6.4.1: the SR pairs an NTP time with an RTP timestamp). This is how
    audio and video, each on its own RTP clock, are put on one time line for lip sync."""
    if sender_report is None or clock_rate <= 0:
        return None
    ntp, rtp = sender_report
    ticks = (timestamp - rtp + 2**31) % 2**32 - 2**31
    return ntp / 2**32 + ticks / clock_rate
