"""How the dispatcher sends: acknowledgements first, then the order mail was queued; no Nagle
delay on the relay connection.

Under load a new case's acknowledgement waited behind the staff notifications of every case
before it (bench/latency.py: 250 -> stored 3.6 s, stored -> acknowledgement 44 s at 8 msgs/s)."""

from __future__ import annotations

from email import message_from_bytes

from gateway.outbox import queue
from gateway.runtime.dispatch import dispatch_due
from templates import Rendered


def test_acknowledgements_go_first_and_the_rest_in_queue_order(make_app, relay):
    app = make_app(outbound={"smtp_host": "127.0.0.1", "smtp_port": relay.port})
    queued = [("notification", "alice@support.example.com"), ("notification", "bob@support.example.com"),
              ("acknowledgement", "ann@customer.example.com"), ("relay", "joe@customer.example.com"),
              ("closure", "joe@customer.example.com"), ("notification", "carol@support.example.com"),
              ("acknowledgement", "li@customer.example.com")]
    with app.db.session() as s:
        for i, (kind, rcpt) in enumerate(queued):
            queue(app, s, kind=kind, ticket=None, to=[rcpt], rendered=Rendered(f"{i} {kind}", "Hello.\n", ""))
    assert dispatch_due(app) == len(queued)
    sent = [message_from_bytes(m["raw"])["Subject"] for m in relay.messages]
    assert sent == ["2 acknowledgement", "6 acknowledgement", "0 notification", "1 notification", "3 relay",
                    "4 closure", "5 notification"]


def test_the_relay_connection_does_not_hold_back_the_final_dot(relay):
    """The final "." of DATA is its own small write after the hand-over is recorded; with
    Nagle's algorithm on, it waited for the relay's delayed ACK, about 40 ms a mail (the
    dispatcher sent 19 mails/s to a loopback relay, 92 with TCP_NODELAY)."""
    import socket

    from gateway.runtime.transports import SmtpTransport

    t = SmtpTransport("127.0.0.1", relay.port)
    try:
        t.send("bounces+1@support.example.test", ["a@customer.example.com"],
               b"Message-ID: <nodelay@support.example.test>\r\nSubject: hi\r\n\r\nbody\r\n")
        assert t._conn.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        t.close()
    assert len(relay.messages) == 1
