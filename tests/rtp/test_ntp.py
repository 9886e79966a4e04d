"""NTP time and the one time line of RTP streams (rtp/ntp.py): NTP timestamps of Unix times
(RFC 3550 §4), their middle 32 bits (§6.4.1), and an RTP timestamp placed on the sender's wall
clock through the stream's last sender report (§6.4.1)."""

from __future__ import annotations

from softphone.rtp.ntp import media_time, ntp_middle, ntp_timestamp


def test_media_time_maps_rtp_timestamps_through_the_sender_report() -> None:
    ntp = (3_900_000_000 << 32) | (1 << 31)  # .5 s
    sr = (ntp, 1000)
    assert media_time(sr, 1000, 90000) == 3_900_000_000.5
    assert media_time(sr, 1000 + 45000, 90000) == 3_900_000_001.0
    assert media_time(sr, 1000 - 90000, 90000) == 3_900_000_000.5 - 1.0
    # across the 32-bit wrap of the RTP timestamp
    wrapped = (ntp, 2**32 - 100)
    assert media_time(wrapped, 800, 8000) == 3_900_000_000.5 + 900 / 8000
    assert media_time(None, 1000, 90000) is None


def test_ntp_timestamps_count_from_1900_in_32_32_fixed_point() -> None:
    # RFC 868: 2208988800 seconds from 1900-01-01 to 1970-01-01.
    assert ntp_timestamp(0.0) == 2_208_988_800 << 32
    assert ntp_timestamp(1.75) == (2_208_988_801 << 32) | (3 << 30)  # .75 = 0xC0000000 / 2**32
    assert ntp_middle((0x12345678 << 32) | 0x9ABCDEF0) == 0x56789ABC
