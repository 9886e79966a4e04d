"""``softphone listen --json`` writes every event it had before it exits: calls made to it from
a second phone (in this process), some hung up by the caller and the rest still up when listen
gets SIGTERM (it hangs them up). Every call's ``call_ended`` line must be in its output, as
the first and the last event of the run are."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

from cli_support import make_env
from phone_support import expect, started

from softphone.phone import events as pe

CALLS = 12
HUNG_UP_BY_CALLER = 4
EXIT_TIMEOUT_S = 30.0


async def read_json_line(stdout: asyncio.StreamReader) -> dict[str, object]:
    async with asyncio.timeout(15):
        line = await stdout.readline()
    assert line, "listen ended before it was listening"
    event = json.loads(line)
    assert isinstance(event, dict)
    return event


async def test_every_call_ended_is_written_when_listen_is_terminated(tmp_path: Path) -> None:
    listen = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "softphone",
        "--log-file",
        str(tmp_path / "listen.log"),
        "listen",
        "--auto-answer",
        "--json",
        "--no-audio",
        "--bind",
        "127.0.0.1",
        "--sip-port",
        "0",
        env=make_env(tmp_path),
        stdin=subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    caller = await started(seed="many-calls")
    try:
        assert listen.stdout is not None and listen.stderr is not None
        first = await read_json_line(listen.stdout)
        assert first["event"] == "listening", first
        target = f"sip:softphone@127.0.0.1:{first['port']}"
        call_ids = [await caller.dial(target) for _ in range(CALLS)]
        up: set[str] = set()
        while up != set(call_ids):
            event = await expect(
                caller, lambda e: isinstance(e, pe.CallStateChanged | pe.CallEnded)
            )
            assert not isinstance(event, pe.CallEnded), event
            if isinstance(event, pe.CallStateChanged) and event.state == "established":
                up.add(event.call_id)
        for call_id in call_ids[:HUNG_UP_BY_CALLER]:
            await caller.hangup(call_id)
        for _ in range(HUNG_UP_BY_CALLER):
            await expect(caller, lambda e: isinstance(e, pe.CallEnded))
        listen.send_signal(signal.SIGTERM)  # the rest are up: listen hangs them up
        async with asyncio.timeout(EXIT_TIMEOUT_S):
            rest, errors = await asyncio.gather(listen.stdout.read(), listen.stderr.read())
            code = await listen.wait()
    finally:
        if listen.returncode is None:
            listen.kill()
            await listen.wait()
        await caller.stop()
    assert code == 0, errors.decode()
    events = [json.loads(line) for line in rest.decode().splitlines()]
    ended = [e["call_id"] for e in events if e["event"] == "call_ended"]
    assert sorted(ended) == sorted(call_ids), (ended, errors.decode()[-2000:])
    incoming = [e["call_id"] for e in events if e["event"] == "incoming_call"]
    assert sorted(incoming) == sorted(call_ids)
