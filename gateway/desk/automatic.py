"""May we send automatic mail to this address now? The one answer, with its reason.

RFC 3834 asks an automatic responder never to answer automatic mail, never to
answer itself and never to flood anyone. Every mail the gateway sends by itself
(an acknowledgement, a status list, a takeover notice, a reminder, a notice to
an engineer) asks `may_send_automatic()` first, naming which checks apply to it
(`CHECKS`, one tuple per kind of mail, in the order they are asked); the first
check that says no gives the reason, which the caller writes in the ticket's
history in its own words.

The checks, each a small function below:

- `automatic`: the mail being answered was itself automatic (parsers/loops.py,
  gateway/handlers/suspend.py);
- `quiet_spam`: it looked like spam and the [spam] quiet_actions say: no answer
  (unless someone released it);
- `address`: there is no address, or it is one of our own (support, +token, bounces);
- `staff`: it is one of our engineers' (a customer-only mail);
- `valid`: it is not an address we would mail (parsers.addresses.is_valid_address);
- `repetition`: its sender sends near-identical mail too often to be a person
  (gateway/desk/loops.py);
- `rate_limit`: `outbound.rate_limit_per_hour` automatic mails went to it in the last hour.

Must not: write anything (the caller records why nothing went), or send anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from gateway import outbox
from gateway.desk.loops import repetition_reason
from parsers.addresses import is_valid_address


@dataclass(frozen=True)
class Answer:
    """Yes, or no with the `reason` (a check's name, see REASONS) and a `detail` in words."""

    allowed: bool
    reason: str = ""
    detail: str = ""

    def __bool__(self) -> bool:
        return self.allowed


YES = Answer(True)

# What each check says when it says no (Answer.reason).
REASONS = ("automatic", "possible spam", "no address", "own address", "staff", "invalid address",
           "content repetition", "rate limit")


def _no(reason: str, detail: str) -> Answer:
    return Answer(False, reason, detail)


def _automatic(app, session, rcpt, answering, verdict) -> Answer | None:
    if answering is not None and answering.automatic:
        return _no("automatic", getattr(answering, "automatic_reason", ""))  # a stored Message keeps none
    return None


def _quiet_spam(app, session, rcpt, answering, verdict) -> Answer | None:
    spam = (verdict or {}).get("spam") or {}
    if spam.get("quiet") and not (verdict or {}).get("released"):  # gateway/handlers/suspend.py
        return _no("possible spam", f"possible spam ({'; '.join(spam.get('reasons', []))[:300]})")
    return None


def _address(app, session, rcpt, answering, verdict) -> Answer | None:
    if not rcpt:
        return _no("no address", "no address")
    if app.is_own_address(rcpt):
        return _no("own address", f"{rcpt} is our own address")
    return None


def _staff(app, session, rcpt, answering, verdict) -> Answer | None:
    if app.is_ours(rcpt):
        return _no("staff", f"{rcpt} is one of our engineers")
    return None


def _valid(app, session, rcpt, answering, verdict) -> Answer | None:
    if not is_valid_address(rcpt):  # the parser keeps none; a row from before it did may
        return _no("invalid address", "not a valid address")
    return None


def _repetition(app, session, rcpt, answering, verdict) -> Answer | None:
    repeated = repetition_reason(app, session, answering) if answering is not None else ""
    return _no("content repetition", repeated) if repeated else None


def _rate_limit(app, session, rcpt, answering, verdict) -> Answer | None:
    limit = app.config.outbound.rate_limit_per_hour
    if outbox.automatic_sent_recently(session, rcpt, app.now() - timedelta(hours=1)) >= limit:
        return _no("rate limit", f"rate limit: {limit} automatic mails/hour to {rcpt}")
    return None


_CHECK = {"automatic": _automatic, "quiet_spam": _quiet_spam, "address": _address, "staff": _staff,
          "valid": _valid, "repetition": _repetition, "rate_limit": _rate_limit}

# Which checks each kind of automatic mail gets, in the order they are asked.
CHECKS = {
    # the acknowledgement of a mail as it arrives (gateway.desk.inbound), and the survey's thanks: all of RFC 3834
    "acknowledgement": ("automatic", "quiet_spam", "address", "valid", "repetition", "rate_limit"),
    # the acknowledgement held back until an engineer released the ticket (gateway.desk.hold)
    "acknowledgement_on_release": ("automatic", "address", "rate_limit"),
    # the templated answer to a stranger writing about someone else's ticket (gateway.handlers.strangers)
    "rejection": ("automatic", "address", "rate_limit"),
    # a customer's own ticket list (gateway.handlers.selfservice): never to staff
    "status_list": ("automatic", "address", "staff", "rate_limit"),
    # "a colleague has taken over" (gateway.desk.briefing)
    "customer_takeover": ("address", "rate_limit"),
    # "your ticket was merged into ..." (gateway.desk.merge_split): never to staff
    "merged": ("address", "staff", "rate_limit"),
    # the closure, the pending reminder and its auto-resolution: an engineer's or a job's
    # one mail per resolution or pending period, never a reply to mail, so not rate limited
    "closure": ("address",),
    "pending_reminder": ("address",),
    "auto_resolved": ("address",),
    # an engineer's first #help written to the support address (gateway.handlers.engineer)
    "command_help": ("automatic", "rate_limit"),
    # telling the engineer that #-lines were not run, or that our mail bounced: to staff, configured
    "command_unverified": ("rate_limit",),
    "delivery_notice": ("rate_limit",),
}


def may_send_automatic(app, session, rcpt: str, kind: str, *, answering=None, verdict: dict | None = None) -> Answer:
    """May the automatic mail `kind` (a key of CHECKS) go to `rcpt` now?

    `answering`: the mail it answers (a ParsedEmail, or a stored Message), when it answers
    one; `verdict`: that mail's spool verdict (the spam check reads it)."""
    for name in CHECKS[kind]:
        no = _CHECK[name](app, session, rcpt, answering, verdict)
        if no is not None:
            return no
    return YES
