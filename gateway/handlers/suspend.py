"""The suspended area: mail that is not a person asking for help, kept but never a ticket.

Zendesk's "suspended tickets" is the model. A message goes there when its sender is
on the block list ([spam] block), when a spam verdict says so (gateway/handlers/spam_verdict.py:
rspamd, or an upstream filter on a trusted hop), or when it is a robot
(parsers/robots.py: bounce, auto-reply, challenge-response, feedback report, receipt,
calendar reply, our own mail) that refers to none of our tickets. Such a message
stays in the spool with status "suspended", its raw bytes untouched, its main
reason in `SpoolEntry.reason` and every reason in `SpoolEntry.verdict`; nothing is
written to a ticket and nothing is sent. `supportgw suspended` lists, shows,
releases and drops them (gateway/cli/suspended.py); a scheduled job purges them
after [spam] retention_days (gateway/jobs/suspend_jobs.py).

`handle` is the pipeline hook, the one place where the decision is taken. It runs
right after the bounce handler (which keeps the reports about *our* mail), before
any handler that could answer. A robot that does refer to a ticket is passed on,
marked automatic, so it becomes an automatic entry on that ticket and is never
answered. A released message is processed again with `verdict["released"]` set:
it is then never suspended, but a robot stays automatic (released or not, nobody
acknowledges a machine).
"""

from __future__ import annotations

import dataclasses
import logging

from gateway.desk.inbound import Inbound
from parsers import authresults
from parsers.robots import UNCLASSIFIED, Robot, classify
from storage.queries import messages

NAME = "suspend"  # the name the pipeline logs (handler=) and gateway/handlers/registry.py lists

log = logging.getLogger("supportgw.suspend")

# The main reasons, as `SpoolEntry.reason` and `supportgw suspended list --reason` name them.
REASONS = ("blocked", "spam", "forged", "bounce", "auto_reply", "challenge", "feedback_report", "receipt",
           "calendar", "loop")


def handle(ib: Inbound) -> str | None:
    app, entry = ib.app, ib.entry
    released = bool((entry.verdict or {}).get("released"))
    robot = classify(ib.email, app.own_addresses) if ib.robot is UNCLASSIFIED else ib.robot  # (parsed ahead)
    if robot is None and app.is_own_address(ib.email.sender.email):  # support+token@, bounces+N@: ours too
        robot = Robot("loop", (f"sender:own-address {ib.email.sender.email}",))
    if robot is not None and not ib.email.automatic:
        # a challenge-response often says nothing in its headers: from here on it is machine mail
        ib.email = dataclasses.replace(ib.email, automatic=True, automatic_reason=f"{robot.kind}: {robot.reasons[0]}")
    if released:
        return None
    blocked = _blocked(app, ib.email.sender.email, entry.envelope_from)
    if blocked:
        return suspend(ib, "blocked", [blocked])
    auth = authresults.read(ib.email.headers, app.config.spam.authserv_id)
    if auth is None:  # no MTA in front of us: check the sender ourselves when we took it over SMTP
        from gateway.handlers import sender_auth
        from gateway.large_mail import scan_bytes

        checked = sender_auth.verify(app, entry, scan_bytes(app, entry))
        if checked:
            own_id = app.config.spam.authserv_id or app.config.gateway.domain
            auth = authresults.read((("Authentication-Results", checked),), own_id)
    if auth is not None:
        forged = _forged(app, ib.email, auth)
        if forged:
            return suspend(ib, "forged", forged, auth=auth.as_dict())
        entry.verdict = {**(entry.verdict or {}), "auth": auth.as_dict()}
    from gateway.handlers import spam_verdict  # the engine and upstream headers; optional, never blocks mail

    verdict = spam_verdict.judge(ib)
    if verdict is not None and verdict.suspend:
        return suspend(ib, "spam", list(verdict.reasons), spam=verdict.as_dict())
    if verdict is not None:  # kept on the spool row, so a person can see what the engine thought
        entry.verdict = {**(entry.verdict or {}), "spam": verdict.as_dict()}
    if robot is None or not app.config.spam.robots:
        return None
    m = ib.find_ticket()
    if m.ticket is not None:
        return None  # it refers to a ticket: an automatic entry there, as auto-replies always were
    reasons = list(robot.reasons)
    if m.stranger_ticket is not None:
        # naming a ticket proves nothing about a sender who is not on it (no hijack by a robot either)
        reasons.append(f"names {m.stranger_ticket.ref}, but its sender is not on that ticket")
    else:
        reasons.append("refers to no ticket and no mail we sent")
    return suspend(ib, robot.kind, reasons, spam=verdict.as_dict() if verdict is not None else None)


def _forged(app, email, auth: authresults.AuthResults) -> list[str]:
    """Why our receiving server's results say the sender is not who the From claims, or []."""
    cfg, sender = app.config.spam, email.sender.email
    domain = sender.rpartition("@")[2]
    if cfg.protect_own_addresses and sender and (app.is_own_address(sender) or sender in app.engineer_addresses()):
        if not auth.passes_for(domain):
            who = "our own support address" if app.is_own_address(sender) else "one of our engineers"
            # whatever reply token it carries: a token proves the address, not the person at the keyboard
            return [f"From: {sender} is {who}, but authentication does not pass for {domain}: {auth.summary()}"]
    if cfg.suspend_dmarc_fail and auth.dmarc == "fail" and auth.dmarc_policy in ("reject", "quarantine"):
        return [f"DMARC fail for {auth.header_from or domain}, which publishes p={auth.dmarc_policy}: "
                f"{auth.summary()}"]
    return []


def on_ticket(ib: Inbound) -> None:
    """After the handlers: the authentication results, shown to engineers on the ticket the mail went to."""
    auth = (ib.entry.verdict or {}).get("auth")
    if not auth:
        return
    from storage.history import record_event
    from storage.models import Ticket

    ticket = ib.match.ticket if ib.match is not None and ib.match.ticket is not None else None
    if ticket is None:  # a new ticket: the one this mail's message was stored on
        tid = messages.ticket_of_spool(ib.session, ib.entry.id)
        ticket = ib.session.get(Ticket, tid) if tid else None
    if ticket is None:
        return
    record_event(ib.session, ticket, "authentication", ib.now,
                 f"message from {ib.email.sender.email}: {auth['summary']}", **{k: auth[k] for k in
                                                                               ("spf", "dkim", "dmarc")})


def _blocked(app, *addresses: str) -> str:
    block = set(app.config.spam.block)
    if not block:
        return ""
    for address in addresses:
        address = (address or "").strip().lower()
        if not address:
            continue
        domain = address.rpartition("@")[2]
        if address in block:
            return f"sender {address} is on the block list"
        parts = domain.split(".")
        for i in range(len(parts) - 1):  # the domain and every parent domain above the TLD
            if ".".join(parts[i:]) in block:
                return f"sender domain {domain} is on the block list ({'.'.join(parts[i:])})"
    return ""


def suspend(ib: Inbound, reason: str, reasons: list[str], *, spam: dict | None = None,
            auth: dict | None = None) -> str:
    """Keep the message in the suspended area; the pipeline settles the row as "suspended"."""
    e, entry = ib.email, ib.entry
    entry.reason = reason
    entry.verdict = {
        "reason": reason, "reasons": reasons,
        "spam": spam or (entry.verdict or {}).get("spam"), "auth": auth or (entry.verdict or {}).get("auth"),
        "from": e.sender.email, "from_name": e.sender.name, "subject": e.subject[:300],
        "message_id": e.message_id, "audit": list((entry.verdict or {}).get("audit", [])),
    }
    log.info("spool %s suspended (%s): %s", entry.id, reason, "; ".join(reasons)[:300])
    return "suspended"


def audit(entry, action: str, at, by: str, note: str = "") -> None:
    """Append to the row's audit trail (a new dict: the JSON column sees a change only on assignment)."""
    verdict = dict(entry.verdict or {})
    verdict["audit"] = list(verdict.get("audit", [])) + [
        {"at": at.isoformat(), "action": action, "by": by, "note": note}]
    if action == "released":
        verdict["released"] = True
    entry.verdict = verdict
