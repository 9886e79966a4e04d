"""The SIP flows list and a call's ladder with its RTP streams, in the real app (Pilot) around
the real phone (on its own thread, as ``softphone`` runs it), registered to Kamailio as alice:
bob (baresip) sends alice an OPTIONS through Kamailio, alice calls bob from the dial bar. The
list shows the REGISTER, the OPTIONS and the call with their message counts and statuses, the
call's ladder shows the digest retry, and its streams count packets while the call is up."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from lab_support import BaresipFactory
from test_softphone_sip import account
from tui_support import until

from softphone import lab
from softphone.config import Config
from softphone.phone.audio import NullAudio
from softphone.phone.phone import Phone
from softphone.phone.threaded import ThreadedPhone
from softphone.transport.resolver import StubBackend
from softphone.tui.app import make_app
from softphone.tui.screens.flows import FlowsScreen
from softphone.tui.screens.trace import TraceScreen, message_label

pytestmark = pytest.mark.interop

STEP_S = 10.0  # bound for any one step; real steps take milliseconds (media: a second)


def rows_by_method(screen: FlowsScreen) -> dict[str, list[str]]:
    table = screen.table
    rows = [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]
    return {row[1]: row for row in rows}


def packets(screen: TraceScreen) -> tuple[int, int]:
    """(sent, received) packets as the streams view has them now."""
    by_direction = {s.direction: s.packets for s in screen.streams.streams}
    return by_direction.get("sent", 0), by_direction.get("received", 0)


async def test_flows_list_and_a_calls_ladder_with_live_rtp_streams(
    kamailio: lab.Kamailio, baresip_factory: BaresipFactory
) -> None:
    bob = baresip_factory(user="bob", transport="udp", auto_answer=True)
    config = Config(accounts=(account(kamailio),))
    phone = ThreadedPhone(
        Phone(
            config,
            bind_host="127.0.0.1",
            sip_port=0,
            rng=random.Random("flows-tui"),
            dns=StubBackend(),
            audio=NullAudio(),  # silence from us; bob sends a tone
        )
    )
    app = make_app(config, phone)
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            await until(
                pilot,
                lambda: (
                    phone.registrations.get("alice") is not None
                    and phone.registrations["alice"].state == "registered"
                ),
                timeout_s=STEP_S,
                what="alice registered",
            )
            reply: dict[str, Any] = await asyncio.to_thread(
                bob.command, "options", f"sip:alice@{lab.DOMAIN}"
            )
            assert reply.get("ok") is True, reply
            await until(
                pilot,
                lambda: any(
                    f.method == "OPTIONS" and f.last_status == "200 OK" for f in phone.sip_flows()
                ),
                timeout_s=STEP_S,
                what="the OPTIONS answered",
            )
            app.main.dial_bar.cursor_blink = False
            await pilot.press(*f"sip:bob@{lab.DOMAIN}", "enter")
            await until(
                pilot,
                lambda: any(c.state == "established" for c in phone.calls),
                timeout_s=STEP_S,
                what="the call established",
            )
            call_id = phone.calls[0].call_id

            await pilot.press("escape", "L")  # out of the dial bar, then the flows list
            await until(pilot, lambda: isinstance(app.screen, FlowsScreen), what="the flows list")
            flows = app.screen
            assert isinstance(flows, FlowsScreen)
            await until(
                pilot,
                lambda: {"REGISTER", "OPTIONS", "INVITE"} <= set(rows_by_method(flows)),
                timeout_s=STEP_S,
                what="the three flows",
            )
            rows = rows_by_method(flows)
            domain = lab.DOMAIN
            # REGISTER, 401 with a challenge, REGISTER with credentials, 200 (RFC 3261 §22.2)
            assert rows["REGISTER"][2:] == [f"alice@{domain}", f"alice@{domain}", "4", "200 OK"]
            assert rows["OPTIONS"][2:] == [f"bob@{domain}", f"alice@{domain}", "2", "200 OK"]
            call_messages = phone.sip_flow(call_id)
            assert rows["INVITE"][2:] == [
                f"alice@{domain}",
                f"bob@{domain}",
                str(len(call_messages)),
                "IN CALL",
            ]
            assert [f.method for f in flows.shown][:1] == ["INVITE"]  # the newest first

            await pilot.press("home", "enter")  # the call's ladder
            await until(pilot, lambda: isinstance(app.screen, TraceScreen), what="the ladder")
            ladder = app.screen
            assert isinstance(ladder, TraceScreen) and ladder.flow_id == call_id
            await until(
                pilot,
                lambda: ladder.ladder.option_count >= len(call_messages),
                what="every message on the ladder",
            )
            labels = [message_label(m) for m in ladder.ladder.messages]
            assert labels[:4] == [
                "INVITE",
                "407 Proxy Authentication Required (INVITE)",
                "ACK",
                "INVITE",
            ]
            # baresip answers "200 Answering"; the ACK follows it. Kamailio's two UDP workers can
            # forward the 180 after the 200, and the ladder shows messages as they came, so the
            # ACK need not be the last one.
            answered = next(i for i, label in enumerate(labels) if label.startswith("200 "))
            assert labels[answered].endswith("(INVITE)") and "ACK" in labels[answered + 1 :]
            assert "180 Ringing" in labels

            await until(pilot, lambda: ladder.streams.display, timeout_s=STEP_S, what="streams")
            sent, received = ladder.streams.streams
            assert (sent.direction, received.direction) == ("sent", "received")
            assert sent.local.startswith("127.0.0.1:") and received.remote.startswith("127.0.0.1:")
            assert received.ssrc is not None and sent.codec == received.codec
            first = packets(ladder)
            await until(
                pilot,
                lambda: all(
                    now > before + 10 for now, before in zip(packets(ladder), first, strict=True)
                ),
                timeout_s=STEP_S,
                what="packets rising both ways",
            )
            assert f" {packets(ladder)[1]} " in str(ladder.streams.render())  # on screen

            await pilot.press("escape")  # back to the list
            await until(pilot, lambda: app.screen is flows, what="the list again")
            await phone.hangup(call_id)
            await asyncio.to_thread(bob.wait_event, "CALL_CLOSED", STEP_S)
            await until(
                pilot,
                lambda: rows_by_method(flows)["INVITE"][5] == "COMPLETED",
                timeout_s=STEP_S,
                what="the call completed in the list",
            )
    finally:
        await phone.stop()
