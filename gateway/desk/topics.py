"""A customer's reply that starts a new question inside an old thread.

`verdict(session, ticket, email)`: parsers.topics' reason ("subject", "unrelated", or "")
for this reply against the ticket's subject and the text of its conversation so far (the
customer side's mails and our answers, never internal notes). The customer handler
(gateway.desk.inbound.follow_up) tells the engineer in the notification, which offers `#split`,
and with `workflow.auto_split_new_topic` opens a linked ticket instead of reopening a
resolved or closed one.
"""

from __future__ import annotations

from parsers.topics import new_topic
from storage.models import Ticket
from storage.queries import messages

THREAD_MESSAGES = 10  # the newest messages of the conversation the reply is compared with


def verdict(session, ticket: Ticket, email) -> str:
    if email.automatic:
        return ""
    texts = messages.recent_public_texts(session, ticket.id, THREAD_MESSAGES)
    return new_topic(email.subject, email.reply_text or email.text, ticket.subject, "\n".join(texts))
