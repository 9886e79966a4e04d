"""What the UI and ``--json`` show about a call's audio: one snapshot of :class:`MediaStats`,
made by ``CallMedia.stats`` (phone/media.py). Tools outside the project read its JSON names
(``to_json``, the ``stats`` of the ``call_stats`` and ``call_ended`` events)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MediaStats:
    """What the UI and ``--json`` show about a call's audio (one snapshot)."""

    codec: str
    packets_sent: int
    packets_received: int
    packets_lost: int
    loss_percent: float
    fraction_lost: float
    jitter_ms: float
    rtt_ms: float | None
    remote_loss_percent: float | None
    remote_jitter_ms: float | None
    jitter_buffer_ms: float
    target_delay_ms: float
    concealed_ms: float
    stretched_ms: float
    late_packets: int
    mos: float
    r_factor: float
    mic_dbfs: float | None = None
    speaker_dbfs: float | None = None
    encryption: str = "none"  # "sdes" | "dtls-srtp"
    srtp_suite: str | None = None
    srtp_auth_failures: int = 0  # received packets dropped: failed authentication
    srtp_replay_drops: int = 0  # received packets dropped: replayed
    srtp_dropped: int = 0  # received packets dropped: malformed, or before the keys
    encryption_error: str | None = None  # a DTLS-SRTP handshake that failed
    ice: str = "off"  # "checking" | "connected" | "failed"; "off": no ICE (transport/ice.py)
    ice_pair: str | None = None  # the selected pair's "local type/remote type": "srflx/host"

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for key in self.__slots__:
            value = getattr(self, key)
            out[key] = round(value, 2) if isinstance(value, float) else value
        return out
