"""The inbound handlers by name, in the order every mail is offered to them.

As in Mailman 3's pipelines: each handler module declares its `NAME` and
`handle(ib) -> str | None`; the first that returns an outcome takes the message and the
pipeline logs its name (`handler=` on the "mail in" line). The order is data, here; a name
no module declares fails when this module is imported, that is when the gateway starts.
"""

from __future__ import annotations

from gateway.handlers import (bounce_handler, customer, engineer, forwards, history, selfservice, senders,
                              survey_handler, suspend)

# bounce_handler: our own mail coming back. senders: a mail with nobody to answer is quarantined;
# suspend: spam, blocked senders and robots that refer to no ticket stop there; history: old
# mail is filed without a word. All of them before anything that could answer (relay, survey,
# status reply). forwards: an engineer's forward of a customer's mail, proven by their intake
# address. The customer's handler (new ticket or follow-up) answers whatever is left.
INBOUND = ("bounce_handler", "senders", "suspend", "history", "forwards", "engineer", "survey_handler",
           "selfservice", "customer")

KNOWN = {m.NAME: m for m in (bounce_handler, senders, suspend, history, forwards, engineer, survey_handler,
                             selfservice, customer)}


class UnknownHandler(LookupError):
    """A handler name no module declares."""


def resolve(names) -> tuple:
    """The handler modules for these names, in this order; an unknown name raises."""
    unknown = [n for n in names if n not in KNOWN]
    if unknown:
        raise UnknownHandler(f"no inbound handler named {', '.join(map(repr, unknown))}; "
                             f"known: {', '.join(sorted(KNOWN))}")
    return tuple(KNOWN[n] for n in names)


HANDLERS = resolve(INBOUND)
