"""The JACK measurer of ``softphone bench mouth-to-ear`` on a short call between two
``softphone`` processes on the JACK dummy card (PortAudio): the clicks it writes into the
caller's capture port come back out of the callee's playback port, every one, with a delay in
a sane range. A measure, not a timing target: the range only says the route is the call's."""

from __future__ import annotations

from pathlib import Path

import pytest
from lab_support import peers_required, require_binary

from softphone.bench.mouth_to_ear import run_mouth_to_ear

pytestmark = pytest.mark.interop

CLICKS = 4


def test_clicks_cross_a_softphone_call_through_the_jack_card(tmp_path: Path) -> None:
    require_binary("jackd")
    with peers_required():
        report = run_mouth_to_ear(
            tmp_path, clicks=CLICKS, seed=5, codecs=("opus",), pairs=("softphone",)
        )
    assert [(r.pair, r.codec) for r in report.results] == [("softphone", "opus")]
    for result in report.results:
        assert (result.found, result.extra) == (CLICKS, 0), result.to_json()
        assert all(20.0 <= d <= 200.0 for d in result.delays_ms), result.delays_ms
        # The measurer fed the caller's capture port alone and heard the callee's playback
        # port alone: two different PortAudio clients.
        (mouth,) = result.routes["mouth_to"]
        (ear,) = result.routes["ear_from"]
        assert mouth.endswith(":in_0") and ear.endswith(":out_0")
        assert mouth.split(":")[0] != ear.split(":")[0]
        assert result.jitter_buffer_ms is not None  # the callee's stats as the call ended
