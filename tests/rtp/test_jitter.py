"""The jitter buffer's scheduling with scripted arrivals (no codec, no clock: `now` by argument)."""

from __future__ import annotations

import itertools
import random

import pytest

from softphone.rtp.jitter import (
    TRANSITIONS,
    Action,
    Arrival,
    Decision,
    FrameKind,
    Input,
    JitterBuffer,
    State,
    Stretch,
)
from softphone.rtp.jitter_target import JitterConfig

CLOCK = 8000
FRAME = 160  # 20 ms
BLOCK = 80  # the playout pulls 10 ms blocks


class Player:
    """A fake playout: produces what each decision says, 10 ms per pull, applies stretches as a
    fixed 2.5 ms period; every 4th frame is a pause, cut or padded by ``quiet_ticks`` (up to all
    but 2.5 ms of it). Logs which packet played when."""

    def __init__(self, jb: JitterBuffer[int]) -> None:
        self.jb = jb
        self.queued = 0  # ticks decoded, not yet handed over
        self.played: list[tuple[int, float]] = []  # (payload, time the decision was made)
        self.starts: list[tuple[int, float, int]] = []  # ...and the ticks queued before it
        self.decisions: list[Decision[int]] = []
        self.quiet_ops = 0
        self.regular = True  # pulls every 10 ms: frame starts may be aligned to them

    def pull(self, now: float) -> None:
        while self.queued < BLOCK:
            d = self.jb.next_frame(
                now=now,
                needed_ticks=BLOCK - self.queued,
                queued_ticks=self.queued,
                quantum_ticks=BLOCK,
                regular_pulls=self.regular,
            )
            self.decisions.append(d)
            produced = d.ticks
            if d.action is Action.PLAY:
                assert d.payload is not None
                self.played.append((d.payload, now))
                self.starts.append((d.payload, now, self.queued))
                if d.payload % 4 == 3 and d.quiet_ticks:
                    cut = min(abs(d.quiet_ticks), FRAME - 20)
                    produced += -cut if d.quiet_ticks > 0 else cut
                    self.quiet_ops += 1
                elif d.stretch in (Stretch.ACCELERATE, Stretch.FAST_ACCELERATE):
                    produced -= 20
                elif d.stretch is Stretch.EXPAND:
                    produced += 20
            self.queued += produced
        self.queued -= BLOCK


def simulate(
    arrivals: list[tuple[float, int]],
    until: float,
    jb: JitterBuffer[int] | None = None,
    player: Player | None = None,
) -> Player:
    """arrivals: (arrival time in s, packet index); index i has seq i, ts i*FRAME, payload i."""
    jb = jb or JitterBuffer(clock_rate=CLOCK, frame_ticks=FRAME)
    player = player or Player(jb)
    pending = sorted(arrivals)
    k = 0
    for step in itertools.count():
        now = step * 0.010
        if now > until:
            break
        while k < len(pending) and pending[k][0] <= now:
            at, i = pending[k]
            jb.put(sequence=i & 0xFFFF, timestamp=(i * FRAME) & 0xFFFFFFFF, payload=i, now=at)
            k += 1
        player.pull(now)
    return player


def steady(
    n: int, base: float = 0.030, jitter: float = 0.004, seed: int = 1, start: int = 0
) -> list[tuple[float, int]]:
    rng = random.Random(seed)
    return [
        (0.020 * (i - start) + base + rng.uniform(0, jitter), i) for i in range(start, start + n)
    ]


def test_every_state_input_pair_transitions_or_is_absent_by_design() -> None:
    for state, event in itertools.product(State, Input):
        target = TRANSITIONS.get((state, event))
        assert target is None or isinstance(target, State)
    assert all(TRANSITIONS[(s, Input.RESET)] is State.EMPTY for s in State)


def test_steady_stream_settles_at_a_low_target_and_plays_everything_in_order() -> None:
    player = simulate(steady(520), until=10.0)
    played = [p for p, _ in player.played]
    assert played[:495] == list(range(495)) and played == sorted(played)
    stats = player.jb.stats(10.0)
    assert stats.late == 0 and stats.frames_concealed == 0
    # 4 ms of jitter: the target settles well under the 60 ms initial value.
    assert stats.target_delay_ms < 12.0
    # ...and the deadline follows it (every packet played within ~20 ms of its arrival).
    arrival = dict((i, at) for at, i in steady(520))
    waits = [now - arrival[i] for i, now in player.played[100:]]
    assert max(waits) < 0.025 and min(waits) >= 0.0


def test_a_delay_spike_costs_a_bounded_slip_and_the_extra_delay_is_removed() -> None:
    arrivals = steady(600)
    spike_at, height = 200, 0.300
    spiked = []
    for at, i in arrivals:
        sent = 0.020 * i
        if spike_at * 0.020 <= sent < spike_at * 0.020 + height:
            at = max(at, spike_at * 0.020 + height + 0.030)  # queue drains at slope -1
        spiked.append((at, i))
    player = simulate(spiked, until=12.5)
    played = [p for p, _ in player.played]
    assert played == sorted(played)
    # Within the late-loss budget the oldest spike packets are given up rather than waited for
    # (a 300 ms slip would cost far more delay); everything after the spike plays.
    skipped = set(range(600)) - set(played)
    assert skipped and skipped <= set(range(spike_at, spike_at + 15))
    assert player.jb.stats(12.5).late == len(skipped)
    when = dict(player.played)
    first = min(set(range(spike_at, 600)) - skipped)
    arrival = dict((i, at) for at, i in spiked)
    # The first packet kept plays as soon as it is there; those given up were the ones more
    # than skip_after_ms (40 ms) behind the playout cursor...
    assert when[first] - arrival[first] < 0.011
    assert all(arrival[i] - 0.020 * i > 0.030 + 0.040 for i in skipped)
    # ...and is removed quickly (pauses cut, fast accelerate): a second later the delay is back
    # to what it was before the spike.
    before = when[spike_at - 20] - 0.020 * (spike_at - 20)
    assert when[spike_at + 65] - 0.020 * (spike_at + 65) < before + 0.005
    assert Stretch.FAST_ACCELERATE in {d.stretch for d in player.decisions}
    assert player.quiet_ops > 0


def test_a_delay_spike_is_waited_for_when_the_late_budget_is_spent() -> None:
    config = JitterConfig(late_budget=0.0)  # never give packets up: wait for them
    jb: JitterBuffer[int] = JitterBuffer(clock_rate=CLOCK, frame_ticks=FRAME, config=config)
    spiked = []
    for at, i in steady(600):
        if 200 * 0.020 <= 0.020 * i < 200 * 0.020 + 0.300:
            at = max(at, 200 * 0.020 + 0.330)
        spiked.append((at, i))
    player = simulate(spiked, until=12.5, jb=jb)
    assert [p for p, _ in player.played] == list(range(600))  # no late loss: delay instead
    when = dict(player.played)
    assert when[203] - 0.020 * 203 > 0.280  # waited for: the timeline slipped
    assert when[215] - 0.020 * 215 > 0.200
    assert when[350] - 0.020 * 350 < 0.050  # removed by fast accelerate afterwards


def test_frequent_spikes_raise_the_target_and_it_decays_after_they_stop() -> None:
    rng = random.Random(3)
    arrivals = []
    for i in range(1000):
        at = 0.020 * i + 0.030 + rng.uniform(0, 0.004)
        if 100 <= i < 400 and i % 5 == 0:
            at += 0.080  # every 100 ms one packet 80 ms late, for 6 s
        arrivals.append((at, i))
    jb: JitterBuffer[int] = JitterBuffer(clock_rate=CLOCK, frame_ticks=FRAME)
    player = Player(jb)
    pending = sorted(arrivals)
    k, targets = 0, {}
    for step in range(2100):
        now = step * 0.010
        while k < len(pending) and pending[k][0] <= now:
            at, i = pending[k]
            jb.put(sequence=i, timestamp=i * FRAME, payload=i, now=at)
            k += 1
        player.pull(now)
        targets[step] = jb.target_delay_ms
    assert targets[190] < 15.0  # before: low
    assert targets[350] > 70.0  # one second into the spikes: covers them (fast attack)
    assert targets[790] > 70.0  # held while they go on
    assert targets[1500] < 15.0  # ~7 s after they stopped: back down (decay)


def test_reordered_packets_are_played_in_order() -> None:
    arrivals = steady(300)
    swapped = []
    for at, i in arrivals:
        if i % 50 == 10:
            at += 0.012  # arrives after its successor (jitter is at most 4 ms)
        swapped.append((at, i))
    player = simulate(swapped, until=6.5)
    assert [p for p, _ in player.played] == list(range(300))
    assert player.jb.stats(6.5).late == 0


def test_late_duplicate_and_old_packets_are_dropped_and_counted() -> None:
    jb: JitterBuffer[int] = JitterBuffer(clock_rate=CLOCK, frame_ticks=FRAME, use_fec=False)
    player = simulate([(at, i) for at, i in steady(130) if i != 100], until=2.5, jb=jb)
    assert [p for p, _ in player.played][98:102] == [98, 99, 101, 102]  # 100 concealed
    assert jb.put(sequence=100, timestamp=100 * FRAME, payload=100, now=2.5) is Arrival.LATE
    assert jb.put(sequence=99, timestamp=99 * FRAME, payload=99, now=2.5) is Arrival.DUPLICATE
    assert jb.put(sequence=110, timestamp=110 * FRAME, payload=110, now=2.5) is Arrival.DUPLICATE
    # Far behind and never seen (a stray from long ago): too old.
    assert jb.put(sequence=65000, timestamp=0, payload=-1, now=2.5) is Arrival.TOO_OLD
    stats = jb.stats(2.5)
    assert (stats.late, stats.duplicate, stats.too_old) == (1, 2, 1)
    assert stats.frames_concealed == 1 and stats.fec_frames == 0


def test_missing_packet_with_fec_in_the_next_one_is_rebuilt_from_it() -> None:
    arrivals = [(at, i) for at, i in steady(100) if i != 40]
    player = simulate(arrivals, until=2.5)
    fec = [d for d in player.decisions if d.action is Action.FEC]
    assert len(fec) == 1 and fec[0].payload == 41 and fec[0].ticks == FRAME
    assert fec[0].frame_starts[0].sequence == 40 and fec[0].frame_starts[0].kind is FrameKind.FEC
    assert [p for p, _ in player.played] == [i for i in range(100) if i != 40]


def test_sequence_and_timestamp_wrap() -> None:
    first = 65536 - 50
    arrivals = steady(200, start=first)
    jb: JitterBuffer[int] = JitterBuffer(clock_rate=CLOCK, frame_ticks=FRAME)
    player = Player(jb)
    base_ts = (1 << 32) - 50 * FRAME
    k = 0
    for step in range(450):
        now = step * 0.010
        while k < len(arrivals) and arrivals[k][0] <= now:
            at, i = arrivals[k]
            jb.put(
                sequence=i & 0xFFFF,
                timestamp=(base_ts + (i - first) * FRAME) & 0xFFFFFFFF,
                payload=i,
                now=at,
            )
            k += 1
        player.pull(now)
    assert [p for p, _ in player.played] == list(range(first, first + 200))
    assert jb.stats(4.5).late == 0 and jb.stats(4.5).resyncs == 0


def test_a_sequence_jump_is_believed_only_when_confirmed_then_restarts() -> None:
    jb: JitterBuffer[int] = JitterBuffer(clock_rate=CLOCK, frame_ticks=FRAME)
    simulate(steady(50), until=1.2, jb=jb)
    assert jb.put(sequence=30000, timestamp=12345, payload=0, now=1.21) is Arrival.TOO_OLD
    assert jb.put(sequence=30001, timestamp=12345 + FRAME, payload=1, now=1.23) is Arrival.RESYNCED
    assert jb.state is State.PREFETCHING and jb.stats(1.23).resyncs == 1


def test_a_timestamp_jump_restarts_the_timeline() -> None:
    jb: JitterBuffer[int] = JitterBuffer(clock_rate=CLOCK, frame_ticks=FRAME)
    player = simulate(steady(50), until=1.2, jb=jb)
    # Same sequence run, but the timestamp jumps 100 s ahead (a new source, a sender restart).
    jump = 100 * CLOCK
    assert (
        jb.put(sequence=50, timestamp=50 * FRAME + jump, payload=50, now=1.03) is Arrival.RESYNCED
    )
    for i in range(51, 80):
        jb.put(sequence=i, timestamp=i * FRAME + jump, payload=i, now=0.02 * i + 0.03)
    for step in range(121, 200):
        player.pull(step * 0.010)
    assert [p for p, _ in player.played][50:70] == list(range(50, 70))


def test_memory_is_bounded_under_a_flood() -> None:
    config = JitterConfig(max_packets=200)
    jb: JitterBuffer[int] = JitterBuffer(clock_rate=CLOCK, frame_ticks=FRAME, config=config)
    rng = random.Random(7)
    for n in range(20000):
        seq = rng.randrange(65536) if n % 3 else n % 65536
        jb.put(sequence=seq, timestamp=rng.randrange(1 << 32), payload=n, now=n * 0.0001)
        if n % 50 == 0:
            jb.next_frame(now=n * 0.0001, needed_ticks=BLOCK, quantum_ticks=BLOCK)
    stats = jb.stats(2.0)
    assert stats.buffered_packets <= 200
    assert jb._delay.intervals_held <= config.window_intervals + config.baseline_intervals + 1
    assert len(jb._played) <= 512
    assert stats.packets_received == 20000


@pytest.mark.parametrize("state", list(State))
def test_reset_from_any_state_empties_the_buffer(state: State) -> None:
    jb: JitterBuffer[int] = JitterBuffer(clock_rate=CLOCK, frame_ticks=FRAME)
    jb.state = state
    jb.reset()
    assert jb.state is State.EMPTY
    d = jb.next_frame(now=0.0, needed_ticks=BLOCK)
    assert d.action is Action.SILENCE and d.ticks == BLOCK


def test_a_slow_first_packet_does_not_time_the_start_and_the_target_has_a_floor() -> None:
    exact = [(0.030 + 0.020 * i, i) for i in range(300)]
    slow_first = [(at + (0.015 if i == 0 else 0.0), i) for at, i in exact]
    normal, slowed = simulate(exact, until=6.0), simulate(slow_first, until=6.0)
    # Packet 1 (15 ms faster than packet 0) arrives while the start is still silence: the start
    # is retimed on it, so the stream plays at the same offset as without the slow packet...
    assert dict(normal.played)[1] == dict(slowed.played)[1]

    # ...and needs no more correction than it (nothing extra to cut or stretch).
    def corrections(player: Player) -> tuple[int, int]:
        speech = sum(d.stretch is not Stretch.NONE for d in player.decisions)
        return speech, sum(abs(d.quiet_ticks) for d in player.decisions)

    # (One more pitch period at most: the two start on different sides of a 10 ms pull.)
    assert corrections(slowed)[0] <= corrections(normal)[0] + 1
    assert corrections(slowed)[1] <= corrections(normal)[1] + 40
    # A jitter-free path still gets the 10 ms floor (pull blocks, event-loop hiccups).
    assert normal.jb.target_delay_ms >= 10.0


@pytest.mark.parametrize(("regular", "offset"), [(True, 0.050), (False, 0.051)])
def test_play_offset_is_the_lowest_pull_at_or_above_the_target(
    regular: bool,
    offset: float,
) -> None:
    # 30 ms + up to 4 ms: target 41 ms over the send time (the 10 ms floor + 1 ms). The player
    # pulls every 10 ms, so a frame can only be decided at offsets 30, 40, 50 ms...: with
    # regular pulls it plays at 50 ms, on a pull. Without (a call's pump), it keeps a block of
    # room: D* + 10 ms (and its deadline wanders with the pull phase).
    jb: JitterBuffer[int] = JitterBuffer(clock_rate=CLOCK, frame_ticks=FRAME)
    player = Player(jb)
    player.regular = regular
    simulate(steady(400), until=8.0, jb=jb, player=player)
    target_s = 0.030 + jb.target_delay_ms / 1000.0  # the baseline is ~30 ms
    assert 0.0405 < target_s < 0.0415
    plays = [now + queued / CLOCK - 0.020 * i for i, now, queued in player.starts[200:]]
    if regular:  # each frame starts exactly on the 50 ms pull, nothing queued before it
        assert all(abs(p - offset) < 1e-9 for p in plays)
    else:
        assert all(abs(p - offset) < 0.0015 for p in plays)
    assert jb.stats(8.0).frames_concealed == 0 and jb.stats(8.0).late == 0


def test_a_refused_speech_stretch_does_not_hold_the_next_one_back() -> None:
    def second_decision(refused: bool) -> Stretch:
        jb: JitterBuffer[int] = JitterBuffer(clock_rate=CLOCK, frame_ticks=FRAME)
        player = simulate(steady(150), until=2.0, jb=jb)  # past the first second
        after = player.played[-1][0] + 1
        stretches = []
        for i in (after, after + 1):  # two frames' pulls, 20 ms apart, each packet just in
            now = 0.020 * i + 0.040
            jb.put(sequence=i, timestamp=i * FRAME, payload=i, now=now - 0.004)
            queued = FRAME + BLOCK  # the playout holds 30 ms: 15-30 ms more than it should
            decision = jb.next_frame(
                now=now,
                needed_ticks=BLOCK,
                queued_ticks=queued,
                quantum_ticks=BLOCK,
                regular_pulls=True,
            )
            assert decision.payload == i and 120 <= decision.quiet_ticks <= 240  # 15-30 ms over
            stretches.append(decision.stretch)
            if refused:
                jb.stretched(0)  # the playout found no pitch period it could remove
        assert stretches[0] is Stretch.ACCELERATE
        return stretches[1]

    assert second_decision(refused=False) is Stretch.NONE  # spaced by stretch_spacing_ms
    assert second_decision(refused=True) is Stretch.ACCELERATE


@pytest.mark.parametrize(
    ("seq_back", "ts_back"),
    [
        (300, 100_000),  # a PBX replaying a prompt: both rewind, sequence numbers played before
        (50, 100_000),
        (0, 8_000),  # the sequence goes on, the timestamps run backwards
        (50, 8_000),  # both rewind by the same 50 frames: looks like duplicates, then 1 s late
        (-3, -50_000),  # a jump forward in time
        (1_000, 0),
    ],
)
def test_a_stream_that_restarts_on_the_same_ssrc_plays_again(seq_back: int, ts_back: int) -> None:
    jb: JitterBuffer[int] = JitterBuffer(clock_rate=CLOCK, frame_ticks=FRAME)
    seq, ts, played_after = 1000, 50_000, []
    for i in range(600):
        if i == 300:
            seq, ts = seq - seq_back, ts - ts_back
        arrival = i * 0.02
        jb.put(sequence=seq % 65536, timestamp=ts % 2**32, payload=i, now=arrival)
        seq, ts = seq + 1, ts + FRAME
        for k in range(4):  # a 5 ms pump pulling 5 ms blocks
            d = jb.next_frame(
                now=arrival + k * 0.005, needed_ticks=40, quantum_ticks=40, regular_pulls=True
            )
            if d.action is Action.PLAY and d.payload is not None and d.payload >= 300:
                played_after.append(d.payload)
    # What follows the restart is played (a second at most is lost telling it from duplicates),
    # in order, and the delay is back to normal rather than stuck seconds behind.
    assert len(played_after) >= 240 and played_after == sorted(played_after)
    assert jb.buffer_delay_ms(600 * 0.02) < 100


def test_a_backlog_queued_before_playout_starts_is_dropped_not_time_stretched() -> None:
    # A call's media comes up 440 ms after the far end began to send: 22 packets wait in the
    # socket and are read at once, then packets come every 20 ms. Played from the oldest, the
    # call starts 440 ms late and seconds of fast-accelerated speech remove it (a clean call
    # scored WB-PESQ 3.05-3.99 instead of ~4.1).
    burst = [(0.45, i) for i in range(22)]
    arrivals = burst + [(at + 0.44, i) for at, i in steady(300, start=22, base=0.01)]
    player = simulate(arrivals, until=6.0)
    stats = player.jb.stats(6.0)
    assert stats.stale >= 15  # the stale part of the backlog went, not the fresh end of it
    assert stats.frames_concealed == 0 and stats.late == 0
    stretches = [d.stretch for d in player.decisions if d.action is Action.PLAY]
    assert Stretch.FAST_ACCELERATE not in stretches
    assert sum(s is not Stretch.NONE for s in stretches) <= 3
    # From the first packet played on, the playout runs close to the arrivals: no seconds of
    # excess delay to work off.
    arrival = dict((i, at) for at, i in arrivals)
    waits = [now - arrival[i] for i, now in player.played[5:]]
    assert max(waits) < 0.06


def test_a_short_bunch_at_the_start_is_still_played() -> None:
    # Two packets bunched (40 ms): under the backlog threshold, nothing is dropped.
    arrivals = [(0.07, 0), (0.07, 1), *steady(200, start=2, base=0.072)]
    player = simulate(arrivals, until=4.0)
    assert player.jb.stats(4.0).stale == 0
    assert [p for p, _ in player.played][:3] == [0, 1, 2]


def test_backlog_threshold_is_configurable() -> None:
    jb: JitterBuffer[int] = JitterBuffer(
        clock_rate=CLOCK, frame_ticks=FRAME, config=JitterConfig(start_backlog_ms=1000.0)
    )
    burst = [(0.45, i) for i in range(22)]
    player = simulate(burst + steady(100, start=22, base=0.45), until=3.0, jb=jb)
    assert player.jb.stats(3.0).stale == 0


@pytest.mark.parametrize("pattern", ["random", "burst"])
def test_a_lost_packet_costs_its_own_length_not_lateness(pattern: str) -> None:
    # 5 % of packets never arrive (at random, or 5 in a row out of every 100). A gap that later
    # packets prove is a loss is concealed once, for its own length: the target does not grow
    # and nothing is stretched to undo a delay that never was.
    rng = random.Random(3)
    arrivals = steady(600, jitter=0.002)
    if pattern == "random":
        lost = {i for _, i in arrivals if rng.random() < 0.05 and i > 10}
    else:
        lost = {i for _, i in arrivals if 50 <= i % 100 < 55}
    kept = [(at, i) for at, i in arrivals if i not in lost]
    until = max(at for at, _ in kept)  # no concealment after the stream's end
    player = simulate(kept, until=until)
    stats = player.jb.stats(until)
    assert stats.frames_concealed + stats.fec_frames == len(lost)
    assert stats.late == 0 and stats.target_delay_ms < 12.0
    concealed = sum(d.ticks for d in player.decisions if d.action in (Action.CONCEAL, Action.FEC))
    assert concealed <= len(lost) * FRAME + FRAME  # the gaps, and at most a frame's rounding
    stretched = [
        d for d in player.decisions if d.action is Action.PLAY and d.stretch is not Stretch.NONE
    ]
    assert len(stretched) <= 2


def test_the_first_guess_of_the_delay_is_worked_off_in_pauses_not_in_speech() -> None:
    # A clean path: the first second's target is the 20 ms guess, the statistics then settle
    # at the 10 ms floor. The 10 ms between went in one accelerated pitch period of speech just
    # after the first second (0.06-0.13 of WB-PESQ on a clean call); pauses (every 4th frame
    # here) take it instead.
    player = simulate(steady(250, jitter=0.001), until=5.0)
    accelerated = [
        d for d in player.decisions if d.action is Action.PLAY and d.stretch is Stretch.ACCELERATE
    ]
    assert accelerated == []
    assert player.quiet_ops >= 1  # ...the pauses did the work
    assert player.jb.stats(5.0).target_delay_ms < 12.0
    arrival = dict((i, at) for at, i in steady(250, jitter=0.001))
    assert max(now - arrival[i] for i, now in player.played[150:]) < 0.025


def test_quiet_frames_are_not_cut_or_padded_for_less_than_the_least_worth_moving() -> None:
    # A clean path whose fastest arrivals wobble by a fraction of a millisecond: the play
    # offset sits a hair above or below its target. Moving a pause by a few samples either way
    # buys nothing and each move is a step in the timeline: both directions wait for
    # ``quiet_min_ms``.
    least = JitterConfig().quiet_min_ms * CLOCK / 1000
    jb: JitterBuffer[int] = JitterBuffer(clock_rate=CLOCK, frame_ticks=FRAME)
    player = Player(jb)
    player.regular = False  # the target is then D* + a block, with D*'s wobble
    simulate(steady(500, jitter=0.0006, seed=3), until=10.0, jb=jb, player=player)
    moves = [abs(d.quiet_ticks) for d in player.decisions if d.quiet_ticks]
    assert moves and all(m >= least for m in moves), sorted(moves)[:10]
