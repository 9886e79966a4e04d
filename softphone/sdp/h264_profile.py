"""H.264 ``profile-level-id`` in SDP (RFC 6184 §8.1, §8.2.2): which profile two offers share,
and the level an answer may take (sans-IO, pure).

``profile-level-id`` is three bytes in hex: profile_idc, profile-iop (the constraint_set flags)
and level_idc (ITU-T H.264 §7.4.2.1.1, Annex A). Two values name the same profile when their
profile_idc and constraint flags say so (Constrained Baseline is written 42e0xx, 42c0xx,
4d80xx or 58c0xx by different encoders); the level is compared apart.

Level 1b: level_idc 11 with constraint_set3_flag (iop 0x10) in the Baseline, Main and Extended
profiles (Annex A.3.1 / A.3.2), else level_idc 9; it sits between 1 and 1.1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Final

from softphone.sdp.errors import SdpError

DEFAULT_PROFILE_LEVEL_ID: Final = "42000a"  # RFC 6184 §8.1: Baseline, level 1.0 when absent
_HEX6: Final = re.compile(r"[0-9A-Fa-f]{6}")
_CONSTRAINT_SET3: Final = 0x10
_LEVEL_1B: Final = 10.5  # an ordering value between level 1 (10) and 1.1 (11)


class H264Profile(Enum):
    """The profiles a video call meets; others keep their profile_idc (``OTHER``)."""

    CONSTRAINED_BASELINE = "constrained-baseline"
    BASELINE = "baseline"
    MAIN = "main"
    CONSTRAINED_HIGH = "constrained-high"
    HIGH = "high"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class ProfileLevelId:
    """One parsed ``profile-level-id``."""

    profile_idc: int
    iop: int
    level_idc: int

    @classmethod
    def parse(cls, text: str | None) -> ProfileLevelId:
        """From fmtp text (absent: Baseline level 1, RFC 6184 §8.1). Raises SdpError when it is
        not 6 hex digits."""
        value = (text or DEFAULT_PROFILE_LEVEL_ID).strip()
        if not _HEX6.fullmatch(value):
            raise SdpError(f"profile-level-id {value!r} is not 3 bytes of hex")
        raw = bytes.fromhex(value)
        return cls(raw[0], raw[1], raw[2])

    def __str__(self) -> str:
        return f"{self.profile_idc:02x}{self.iop:02x}{self.level_idc:02x}"

    @property
    def profile(self) -> H264Profile:
        """The profile by profile_idc and constraint flags (H.264 Annex A.2)."""
        idc, iop = self.profile_idc, self.iop
        if (
            (idc == 0x42 and iop & 0x40)  # constraint_set1: also Main-conformant
            or (idc == 0x4D and iop & 0x80)  # constraint_set0: also Baseline-conformant
            or (idc == 0x58 and iop & 0xC0 == 0xC0)
        ):
            return H264Profile.CONSTRAINED_BASELINE
        if idc == 0x42 or (idc == 0x58 and iop & 0x80):
            return H264Profile.BASELINE
        if idc == 0x4D:
            return H264Profile.MAIN
        if idc == 0x64:
            return H264Profile.CONSTRAINED_HIGH if iop & 0x0C == 0x0C else H264Profile.HIGH
        return H264Profile.OTHER

    def same_profile(self, other: ProfileLevelId) -> bool:
        if self.profile is H264Profile.OTHER or other.profile is H264Profile.OTHER:
            return self.profile_idc == other.profile_idc
        return self.profile is other.profile

    def can_answer(self, offered: ProfileLevelId) -> bool:
        """Whether our codec of this profile takes an offer of ``offered``'s profile (RFC 6184
        §8.2.2: the answer names the offer's profile): the same profile, or our Constrained
        Baseline for a Baseline offer. Constrained Baseline is Baseline with constraint_set1
        (H.264 A.2.1.1), so what we send is a Baseline stream; what the peer sends us is read
        by a decoder without Baseline's FMO, ASO and redundant slices, which real-time encoders
        (OpenH264, x264) do not use. Peers offer Baseline: Linphone 5.1 writes ``42801F``, and
        an offer without ``profile-level-id`` means Baseline (§8.1)."""
        if self.same_profile(offered):
            return True
        return (
            self.profile is H264Profile.CONSTRAINED_BASELINE
            and offered.profile is H264Profile.BASELINE
        )

    @property
    def level(self) -> float:
        """The level for ordering (level_idc, 1b as 10.5)."""
        if self.is_level_1b:
            return _LEVEL_1B
        return float(self.level_idc)

    @property
    def is_level_1b(self) -> bool:
        if self.level_idc == 9:
            return True
        return (
            self.level_idc == 11
            and bool(self.iop & _CONSTRAINT_SET3)
            and self.profile
            in (H264Profile.BASELINE, H264Profile.CONSTRAINED_BASELINE, H264Profile.MAIN)
        )

    def with_level_of(self, other: ProfileLevelId) -> ProfileLevelId:
        """This profile at ``other``'s level (1b carried as 11 + constraint_set3 in the
        Baseline/Main family, as RFC 6184 §8.1 writes it)."""
        iop = self.iop & ~_CONSTRAINT_SET3
        if other.is_level_1b:
            if self.profile in (
                H264Profile.BASELINE,
                H264Profile.CONSTRAINED_BASELINE,
                H264Profile.MAIN,
            ):
                return ProfileLevelId(self.profile_idc, iop | _CONSTRAINT_SET3, 11)
            return ProfileLevelId(self.profile_idc, iop, 9)
        return ProfileLevelId(self.profile_idc, iop, other.level_idc)


def answer_profile_level_id(
    offered: ProfileLevelId, ours: ProfileLevelId, *, asymmetry: bool
) -> ProfileLevelId:
    """The ``profile-level-id`` of our answer to ``offered`` (RFC 6184 §8.2.2): the offer's
    profile, and a level not above the offer's (the lower of the two) for a sendrecv stream;
    with ``level-asymmetry-allowed=1`` on both sides (RFC 6184 §8.1), our own receive level.
    The profiles must agree (the caller checks ``can_answer``)."""
    level = ours if asymmetry or ours.level <= offered.level else offered
    return offered.with_level_of(level)
