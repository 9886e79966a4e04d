"""The RTSP connection: one TCP stream to an RTSP server, TLS for ``rtsps`` (RFC 2326 §10.12:
interleaved RTP and RTCP ride on it too when media goes over TCP).

Sockets only: bytes read go to a receiver's ``data_received``, a lost connection to its
``connection_lost``; what the bytes mean is the business of the sans-IO client (rtsp/client.py)
that phone/player_session.py pumps. Failing to connect is translated into
:class:`RtspConnectError` at one place, :func:`open_rtsp_stream`. The UDP sockets for RTP and
RTCP are transport/rtp.py's.

Certificates are checked unless the user asks otherwise (``--insecure``, for cameras with
self-signed certificates); a private CA is trusted by naming its file.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Protocol


class RtspConnectError(Exception):
    """The connection to the RTSP server could not be opened."""


class ConnectTimedOut(RtspConnectError):
    """No answer within the time given."""


class CertificateRejected(RtspConnectError):
    """The server's TLS certificate failed the check; ``verify_message`` says why (OpenSSL's
    words). Asking again will not help."""

    def __init__(self, verify_message: str) -> None:
        super().__init__(verify_message)
        self.verify_message = verify_message


class Unreachable(RtspConnectError):
    """The connection was refused or the network is unreachable; ``reason`` as the OS says.
    ``refused``: the host answered that nothing listens there (a server restarting, or none)."""

    def __init__(self, reason: str, *, refused: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.refused = refused


class StreamReceiver(Protocol):
    """Where the connection's bytes and its end go."""

    def data_received(self, data: bytes) -> None: ...

    def connection_lost(self, exc: Exception | None) -> None: ...


class _Protocol(asyncio.Protocol):
    def __init__(self, receiver: StreamReceiver) -> None:
        self._receiver = receiver

    def data_received(self, data: bytes) -> None:
        self._receiver.data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._receiver.connection_lost(exc)


class RtspStream:
    """An open connection: write bytes, learn both ends' addresses, close."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    @property
    def closing(self) -> bool:
        return self._transport.is_closing()

    def write(self, data: bytes) -> None:
        """Queue ``data``; nothing happens once the connection is closing."""
        if data and not self._transport.is_closing():
            self._transport.write(data)

    def local_host(self) -> str:
        """Our address on this connection: where UDP media can be asked to come."""
        sockname = self._transport.get_extra_info("sockname")
        return str(sockname[0]) if sockname else "0.0.0.0"

    def peer_host(self) -> str | None:
        """The server's address, as connected to."""
        peer = self._transport.get_extra_info("peername")
        return str(peer[0]) if peer else None

    def close(self) -> None:
        self._transport.close()


def tls_context(*, ca_file: Path | None, insecure: bool) -> ssl.SSLContext:
    """The context of an ``rtsps`` connection: the system's trust store plus ``ca_file``, or no
    check at all with ``insecure``. An unreadable ``ca_file`` raises OSError here."""
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


async def open_rtsp_stream(
    host: str,
    port: int,
    receiver: StreamReceiver,
    *,
    tls: ssl.SSLContext | None,
    timeout_s: float,
) -> RtspStream:
    """Connect to ``host``:``port`` (TLS with ``tls``); raises only RtspConnectError."""
    loop = asyncio.get_running_loop()
    try:
        transport, _ = await asyncio.wait_for(
            loop.create_connection(
                lambda: _Protocol(receiver),
                host,
                port,
                ssl=tls,
                server_hostname=host if tls is not None else None,
            ),
            timeout_s,
        )
    except TimeoutError:
        raise ConnectTimedOut(f"no answer within {timeout_s:.0f} s") from None
    except ssl.SSLCertVerificationError as exc:
        raise CertificateRejected(exc.verify_message) from None
    except OSError as exc:
        refused = isinstance(exc, ConnectionRefusedError)
        raise Unreachable(exc.strerror or str(exc), refused=refused) from None
    assert isinstance(transport, asyncio.Transport)
    return RtspStream(transport)
