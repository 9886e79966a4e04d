"""``PhoneEvent.to_json`` copies scalar fields directly instead of going through ``asdict``: for
every event kind, with every field filled, the result must be what ``asdict`` gives."""

from __future__ import annotations

import dataclasses
import enum
import json
import sys
import types
import typing
from typing import Any

import pytest

from softphone.phone import events as pe


def every_event_class() -> list[type[pe.PhoneEvent]]:
    """Every event class that uses the base ``to_json`` (two write their own)."""
    found: set[type[pe.PhoneEvent]] = set()
    todo = list(pe.PhoneEvent.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        # A slots dataclass is a new class: the one it replaced lingers among the subclasses.
        if getattr(sys.modules[cls.__module__], cls.__name__, None) is not cls:
            continue
        if cls.to_json is pe.PhoneEvent.to_json:
            found.add(cls)
    return sorted(found, key=lambda c: c.kind)


def sample(hint: Any, depth: int = 0) -> Any:
    """A value of type ``hint`` (not the default, so that every field is really copied)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Literal:
        return args[-1]
    if origin in (typing.Union, types.UnionType):
        return sample(next(a for a in args if a is not type(None)), depth)
    if origin is tuple:
        return (sample(args[0], depth + 1), sample(args[0], depth + 1))
    if origin is list:
        return [sample(args[0], depth + 1), sample(args[0], depth + 1)]
    if origin is dict:
        return {"packets": 7, "ratio": 0.5, "codec": "PCMU", "on": True, "none": None}
    if hint is Any:
        return "any"
    if hint is bool:
        return True
    if hint is int:
        return 41 + depth
    if hint is float:
        return 2.5
    if hint is str:
        return "text"
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return list(hint)[-1]
    if dataclasses.is_dataclass(hint):
        return build(hint, depth + 1)
    raise AssertionError(f"no sample for {hint!r}")


def build(cls: Any, depth: int = 0) -> Any:
    hints = typing.get_type_hints(cls)
    return cls(**{f.name: sample(hints[f.name], depth) for f in dataclasses.fields(cls)})


EVENTS = every_event_class()


def test_every_event_kind_is_covered() -> None:
    # Every event the phone exports (but the one with its own to_json), each kind once.
    exported = {
        obj
        for name in pe.__all__
        if isinstance(obj := getattr(pe, name), type)
        and issubclass(obj, pe.PhoneEvent)
        and obj not in (pe.PhoneEvent, pe.MessageReceived, pe.StreamDescribed)
    }
    assert set(EVENTS) == exported and len(exported) > 25
    assert len({cls.kind for cls in EVENTS}) == len(EVENTS)


@pytest.mark.parametrize("cls", EVENTS, ids=lambda cls: cls.kind)
def test_to_json_is_the_event_as_asdict_gives_it(cls: type[pe.PhoneEvent]) -> None:
    event = build(cls)
    expected = {"event": cls.kind, **dataclasses.asdict(event)}
    got = event.to_json()
    assert got == expected
    assert list(got) == list(expected)  # the same order, so the same JSON text
    assert json.dumps(got, default=str) == json.dumps(expected, default=str)


def test_the_copied_statistics_are_the_events_own_no_longer() -> None:
    # asdict copies a dict field; so must the shortcut: changing the JSON must not change the
    # event (another front end may still be showing it).
    stats = {"packets_sent": 10, "jitter_ms": 1.5}
    event = build(pe.CallStats)
    event = dataclasses.replace(event, stats=stats)
    out = event.to_json()
    assert out["stats"] == stats and out["stats"] is not stats
    out["stats"]["packets_sent"] = 0
    assert event.stats["packets_sent"] == 10


def test_nested_values_go_the_long_way_and_come_out_the_same() -> None:
    # A dict holding a list (not flat): to_json falls back to asdict, a deep copy.
    event = dataclasses.replace(build(pe.CallStats), stats={"codecs": ["PCMU", "opus"]})
    out = event.to_json()
    assert out == {"event": "call_stats", **dataclasses.asdict(event)}
    out["stats"]["codecs"].append("G722")
    assert event.stats["codecs"] == ["PCMU", "opus"]
