"""One human line per phone event: what the CLI prints on stderr and the TUI shows as a message.
An empty string means "nothing to say" (events meant for --json only)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from softphone.phone import player_events as ps
from softphone.phone.player_events import PhoneEvent

if TYPE_CHECKING:
    from softphone.phone import events as pe


def describe(event: PhoneEvent) -> str:
    line = _player_line(event)
    return line if line is not None else _call_line(event)


def _player_line(event: PhoneEvent) -> str | None:
    match event:
        case ps.Notice(level=level, text=text):
            return f"{level}: {text}"
        case ps.StreamDescribed(url=url, streams=streams):
            listed = ", ".join(
                f"{s.media} {s.codec}" + ("" if s.supported else " (not played)") for s in streams
            )
            return f"{url}: {listed}"
        case ps.StreamPlaying(transport=t, range_end=end):
            return f"playing over {t.upper()}" + (f" ({end:.0f} s of media)" if end else "")
        case ps.StreamPaused():
            return "paused"
        case ps.FirstFrame(ms=ms, width=w, height=h, codec=codec):
            return f"first picture after {ms:.0f} ms: {codec} {w}x{h}"
        case ps.StreamReconnecting(attempt=n, delay_s=d, reason=r):
            return f"{r}; reconnecting in {d:.0f} s (attempt {n})"
        case ps.StreamFailed(reason=r):
            return f"softphone: cannot play: {r}"
        case ps.StreamSummary(video_frames=v, audio_frames=a, lost_packets=lost, reconnects=rc):
            return f"played {v} video frames, {a * 20 / 1000:.1f} s of audio; {lost} packets lost, {rc} reconnects"
        case ps.StreamStats():
            return ""
    return None


def _call_line(event: PhoneEvent) -> str:
    # The SIP events load only when one is shown: `softphone play` never makes their classes.
    from softphone.phone import events as pe
    from softphone.phone.message_text import printable

    match event:
        case pe.Listening(transport=t, host=h, port=p, fallback=fb):
            return f"listening on {t} {h}:{p}" + (" (default port was taken)" if fb else "")
        case pe.Registered(account=a, expires=e):
            return f"registered {a} (expires in {e} s)"
        case pe.RegistrationFailed(account=a, reason=r, retry_in_s=retry):
            tail = f"; retrying in {retry:.0f} s" if retry else ""
            return f"registration of {a} failed: {r}{tail}"
        case pe.Unregistered(account=a):
            return f"unregistered {a}"
        case pe.Registering(account=a, server=server, transport=t):
            return f"registering {a}" + (f" to {server} over {t}" if server else "")
        case pe.NoAnswerYet(request="REGISTER", account=a, server=server, transport=t):
            return f"registering {a} to {server} over {t}: no answer yet ({_still(event)})"
        case pe.NoAnswerYet(server=server, transport=t):
            return f"calling through {server} over {t}: no answer yet ({_still(event)})"
        case pe.MuteChanged(muted=m):
            return "microphone muted" if m else "microphone on"
        case pe.EchoCancellationChanged(on=on):
            return f"echo cancellation {'on' if on else 'off'}"
        case pe.VoicemailStarted(caller=caller, caller_name=name):
            return f"voicemail: {name or caller} is leaving a message"
        case pe.VoicemailRecorded(duration_s=d, path=path):
            return f"voicemail: a message of {d:.0f} s in {path}"
        case pe.ConferenceChanged(call_ids=ids):
            return f"conference of {len(ids)} calls" if ids else "conference ended"
        case pe.RecordingChanged(path=path):
            return f"recording to {path}" if path else "recording stopped"
        case pe.VideoSourceLost(reason=reason):
            return f"our video stopped: {reason} (the call goes on without it)"
        case pe.VideoPictureChanged(broken=True, reason=reason):
            return f"the far end's picture is broken: {reason} (asking for a key frame)"
        case pe.VideoPictureChanged():
            return "the far end's picture is back"
        case pe.IncomingCall(remote=r, display_name=name, waiting=w):
            who = f"{name} <{r}>" if name else r
            return f"incoming call from {who}" + (" (call waiting)" if w else "")
        case pe.CallStateChanged(state="ended"):
            return ""  # the call_ended line says how it ended
        case pe.CallStateChanged(state=s, remote=r):
            return f"call {s}: {r}"
        case pe.CallEnded():
            return ended_line(event)
        case pe.TransferProgressed(status=s, reason=r, final=f):
            return f"transfer: {s} {r}" + (" (final)" if f else "")
        case pe.DtmfReceived(digit=digit, method=method):
            return f"DTMF {digit} received ({method})"
        case pe.CallStats():
            return ""  # --json only: too chatty for a person
        case pe.MessageReceived() | pe.MessageStatusChanged():
            return message_line(event)
        case pe.PresenceChanged(uri=uri, state=state, note=note, lamp=lamp):
            said = f" ({printable(note)})" if note else ""
            return f"{uri}: {state}{said}, lamp {lamp}"
        case pe.MessageWaiting(account=a, waiting=waiting, new=new, old=old):
            if not waiting and not new:
                return f"voicemail of {a}: nothing new ({old} old)"
            urgent = f", {event.urgent_new} urgent" if event.urgent_new else ""
            return f"voicemail of {a}: {new} new{urgent}, {old} old"
        case pe.OwnPresenceChanged(state=state, shown=shown, note=note):
            why = " (on the phone)" if shown != state else ""
            return f"presence: {shown}{why}" + (f" ({printable(note)})" if note else "")
    return ""


def message_line(event: pe.MessageReceived | pe.MessageStatusChanged) -> str:
    """``message from Bob <sip:bob@lab.test>: hi``, ``message to sip:bob@lab.test delivered``,
    ``message to sip:nobody@lab.test failed: 404 Not Found (no such user or number)``. Text
    from the network is made safe to print (no terminal control sequences)."""
    from softphone.phone import events as pe
    from softphone.phone.message_text import printable
    from softphone.sip.status import explain

    in_call = " (in the call)" if event.call_id is not None else ""
    if isinstance(event, pe.MessageReceived):
        who = f"{event.display_name} <{event.remote}>" if event.display_name else event.remote
        note = f" [{event.note}]" if event.note else ""
        return printable(f"message from {who}{in_call}: {event.text}{note}")
    match event.state:
        case "sending":
            return f"sending a message to {event.remote}{in_call}"
        case "delivered":
            return f"message to {event.remote} delivered{in_call}"
        case "failed":
            why = event.reason if event.no_response else explain(event.status, event.reason)
            return f"message to {event.remote} failed: {why}"


def ended_line(event: pe.CallEnded) -> str:
    """How the call ended, outcome first in plain words, the SIP status after it in brackets:
    ``call failed: declined (SIP 603 Decline)``, ``call failed: network problem: no response
    from 192.0.2.1:5060 (INVITE timed out)``."""
    from softphone.phone.outcome import OUTCOME_WORDS
    from softphone.sip.status import EXPLANATIONS

    if event.outcome == "voicemail":
        return f"the answering machine took the call ({event.duration_s:.0f} s)"
    if event.answered:
        return f"call ended after {event.duration_s:.1f} s: {event.reason}"
    sip = f"SIP {event.status} {event.phrase}" if event.phrase else ""
    match event.outcome:
        case "cancelled":
            return "call cancelled"
        case "missed":
            return f"missed call: {event.reason}"
        case "rejected" if event.reason.startswith("do not disturb"):
            return f"call refused: {event.reason}"
        case "rejected":
            return "call rejected" + (f" ({sip})" if sip else "")
        case "forwarded":
            return f"call {event.reason}"
        case "failed":
            words = EXPLANATIONS.get(event.status) or event.phrase or event.reason
        case _:
            words = OUTCOME_WORDS[event.outcome]
    if sip:
        return f"call failed: {words} ({sip})"
    if event.reason and event.reason != words:
        return f"call failed: {words}: {event.reason}"
    return f"call failed: {words}"


def _still(event: PhoneEvent) -> str:
    """What SIP does meanwhile, and for how long: the reason a silent server takes this long."""
    from softphone.phone import events as pe

    assert isinstance(event, pe.NoAnswerYet)
    doing = "retrying" if event.transport == "udp" else "waiting"
    return f"{doing}; gives up in {event.gives_up_in_s:.0f} s"
