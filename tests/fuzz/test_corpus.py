"""The fuzz corpus replayed: every seed, and every input the fuzzing campaign ever found to
break a contract (``crash-*.bin``, kept as regression tests), keeps its target's contract now.

Targets and contracts: softphone/bench/reliability/targets.py. The corpus is written by
``softphone bench reliability seeds`` and ``... fuzz`` (``make reliability``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from softphone.bench.reliability.fuzz_worker import signature
from softphone.bench.reliability.seeds import build_seeds
from softphone.bench.reliability.targets import TARGETS, datagrams, framed

CORPUS = Path(__file__).parent
DATA = CORPUS.parent / "data"
CASES = [
    (folder.name, path)
    for folder in sorted(p for p in CORPUS.iterdir() if p.is_dir() and p.name in TARGETS)
    for path in sorted(folder.glob("*.bin"))
]


@pytest.mark.parametrize(("target", "path"), CASES, ids=[f"{t}/{p.name}" for t, p in CASES])
def test_corpus_input_keeps_the_contract(target: str, path: Path) -> None:
    broken = TARGETS[target].check(path.read_bytes())
    assert broken is None, f"{target}/{path.name}: {type(broken).__name__}: {broken}"


def test_every_folder_is_a_target_and_every_target_has_seeds() -> None:
    folders = {p.name for p in CORPUS.iterdir() if p.is_dir() and not p.name.startswith("_")}
    assert folders == set(TARGETS)
    for name in TARGETS:
        assert any((CORPUS / name).glob("seed-*.bin")), name


def test_the_seeds_on_disk_are_what_the_fixtures_build() -> None:
    """The seeds are made from tests/data: a fixture that changes must be re-seeded
    (``softphone bench reliability seeds``)."""
    for name, seeds in build_seeds(DATA).items():
        on_disk = {p.name: p.read_bytes() for p in (CORPUS / name).glob("seed-*.bin")}
        assert on_disk == {f"seed-{n}.bin": body for n, body in seeds}, name


def test_a_broken_contract_is_reported_not_raised() -> None:
    target = TARGETS["sip_message"]
    assert target.check(b"INVITE sip:a@b SIP/2.0\r\n\r\n") is None  # ParseError is allowed
    bomb = type(target)("bomb", "test", (ValueError,), lambda data: [][len(data)])
    broken = bomb.check(b"x")
    assert isinstance(broken, IndexError)
    assert signature(broken).startswith("IndexError at ")


def test_datagram_framing_round_trips() -> None:
    items = [b"", b"\x80\x00", bytes(range(256)) * 3]
    assert list(datagrams(framed(items))) == items
    assert list(datagrams(b"\x00\x05ab")) == [b"ab"]  # a short tail is still fed
