"""The database schema: SQLAlchemy 2 typed models.

Owns table and column definitions only. Queries that several callers share
live in `storage/queries.py`; migrations in `storage/migrations/`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from storage.types import JSONType, UTCDateTime

# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL wants BIGINT for big tables.
BigId = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    pass


class SpoolEntry(Base):
    """Raw inbound bytes, committed before the source is acknowledged."""

    __tablename__ = "spool"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str] = mapped_column(String(998), default="", index=True)
    # sha256(message_id NUL sha256): one row per distinct message, whatever the source.
    dedupe_key: Mapped[str] = mapped_column(String(64), unique=True)
    envelope_from: Mapped[str] = mapped_column(String(998), default="")
    envelope_to: Mapped[list] = mapped_column(JSONType, default=list)
    # The bytes themselves; NULL when the message was streamed to the spool blob
    # store (data_dir/spool-blobs/<sha256>) because it is large. Read through
    # storage.spool.raw_bytes(), never directly.
    raw: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # pending -> processed | quarantined | suspended | dropped
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    # Suspended (not a person asking for help): the main reason, and the whole verdict
    # (every reason, the spam engine's answer, releases and drops). gateway/handlers/suspend.py.
    reason: Mapped[str] = mapped_column(String(40), default="", server_default="", index=True)
    verdict: Mapped[dict | None] = mapped_column(JSONType, nullable=True)
    # The SMTP client as our listener saw it ("" for IMAP and files): the spam engine's evidence.
    client_ip: Mapped[str] = mapped_column(String(64), default="", server_default="")
    helo: Mapped[str] = mapped_column(String(255), default="", server_default="")
    error: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), nullable=True, index=True)


class Ticket(Base):
    __tablename__ = "tickets"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ref: Mapped[str | None] = mapped_column(String(40), unique=True, nullable=True)
    subject: Mapped[str] = mapped_column(Text, default="")
    # new -> open -> pending -> resolved -> closed (reopen goes back to open)
    status: Mapped[str] = mapped_column(String(20), default="new", index=True)
    priority: Mapped[str] = mapped_column(String(4), default="P3")
    category: Mapped[str] = mapped_column(String(100), default="general")
    team: Mapped[str] = mapped_column(String(100), default="support")
    tier: Mapped[int] = mapped_column(Integer, default=1)
    owner: Mapped[str] = mapped_column(String(320), default="")  # the engineer responsible
    handler: Mapped[str] = mapped_column(String(320), default="")  # who handles it now (handover)
    requester_email: Mapped[str] = mapped_column(String(320), index=True)
    requester_name: Mapped[str] = mapped_column(String(320), default="")
    organisation: Mapped[str] = mapped_column(String(200), default="")
    project: Mapped[str] = mapped_column(String(200), default="")
    customer_tier: Mapped[str] = mapped_column(String(50), default="")
    language: Mapped[str] = mapped_column(String(10), default="en")
    tags: Mapped[list] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    first_response_due: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resolution_due: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    first_responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # SLA clock pause while waiting on the customer
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    paused_seconds: Mapped[int] = mapped_column(Integer, default=0)
    sla_policy: Mapped[str] = mapped_column(String(50), default="")
    linked_ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), nullable=True, index=True)
    # merged into that ticket (#merge): closed, everything moved there, its addresses lead there
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", name="fk_tickets_merged_into"),
                                                       nullable=True, index=True)
    held: Mapped[bool] = mapped_column(Boolean, default=False)  # awaiting owner approval (stranger policy)
    # handover / escalation state (the history of who held it when is in events)
    handover_reason: Mapped[str] = mapped_column(String(200), default="")
    escalated_from: Mapped[str] = mapped_column(String(320), default="")  # tier-1 owner while at tier 2
    manager_escalated: Mapped[bool] = mapped_column(Boolean, default=False)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)  # pending reminder sent
    solution: Mapped[str] = mapped_column(Text, default="")  # the current resolution's own
    # the newest message when last reopened (0: never): the current resolution's replies come after it
    reopen_message_id: Mapped[int] = mapped_column(BigInteger, default=0)
    # the [[address]] the customer wrote to ("": gateway.support_addresses): our mail's From
    address: Mapped[str] = mapped_column(String(320), default="")

    messages: Mapped[list["Message"]] = relationship(back_populates="ticket", order_by="Message.id")
    participants: Mapped[list["Participant"]] = relationship(back_populates="ticket")


class Participant(Base):
    """Who may write to a ticket and who hears of it (requester, cc, watcher)."""

    __tablename__ = "participants"
    __table_args__ = (UniqueConstraint("ticket_id", "email", "role"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    email: Mapped[str] = mapped_column(String(320), index=True)
    name: Mapped[str] = mapped_column(String(320), default="")
    role: Mapped[str] = mapped_column(String(20))  # requester | cc | watcher
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    ticket: Mapped[Ticket] = relationship(back_populates="participants")


class Message(Base):
    __tablename__ = "messages"
    # the loop detector asks "what did this sender send in the last hour?" for every message
    __table_args__ = (Index("ix_messages_sender_time", "sender_email", "created_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    spool_id: Mapped[int | None] = mapped_column(ForeignKey("spool.id"), nullable=True, index=True)
    direction: Mapped[str] = mapped_column(String(10))  # in | out
    kind: Mapped[str] = mapped_column(String(30), default="customer")  # customer|engineer|note|automatic|...
    message_id: Mapped[str] = mapped_column(String(998), default="", index=True)
    sender_email: Mapped[str] = mapped_column(String(320), default="")
    sender_name: Mapped[str] = mapped_column(String(320), default="")
    to: Mapped[list] = mapped_column(JSONType, default=list)
    cc: Mapped[list] = mapped_column(JSONType, default=list)
    subject: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text, default="")
    reply_text: Mapped[str] = mapped_column(Text, default="")
    html: Mapped[str] = mapped_column(Text, default="")
    automatic: Mapped[bool] = mapped_column(Boolean, default=False)
    internal: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ticket: Mapped[Ticket] = relationship(back_populates="messages")
    attachments: Mapped[list["AttachmentRow"]] = relationship(back_populates="message")


class AttachmentRow(Base):
    """Attachment metadata; the bytes live content-addressed under data_dir/attachments."""

    __tablename__ = "attachments"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    message: Mapped[Message] = relationship(back_populates="attachments")


class ThreadId(Base):
    """Every Message-ID we have seen or sent, and the ticket it belongs to."""

    __tablename__ = "thread_ids"
    __table_args__ = (UniqueConstraint("message_id", "ticket_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(998), index=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    # the addresses this Message-ID was exchanged with; a reply from anyone else is a stranger
    outbound: Mapped[bool] = mapped_column(Boolean, default=False)


class Event(Base):
    __tablename__ = "events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    actor: Mapped[str] = mapped_column(String(320), default="system")
    detail: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict] = mapped_column(JSONType, default=dict)


class OutboxRow(Base):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),
                      Index("ix_outbox_rcpt_auto", "rcpt", "automatic", "created_at"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), nullable=True, index=True)
    kind: Mapped[str] = mapped_column(String(30))  # acknowledgement | relay | notification | ...
    rcpt: Mapped[str] = mapped_column(String(320), default="")  # first recipient (for rate limits)
    to: Mapped[list] = mapped_column(JSONType, default=list)
    cc: Mapped[list] = mapped_column(JSONType, default=list)
    envelope_to: Mapped[list] = mapped_column(JSONType, default=list)
    subject: Mapped[str] = mapped_column(Text, default="")
    message_id: Mapped[str] = mapped_column(String(998), index=True)
    # The mail's bytes, or NULL while it is a draft: the rendered text and headers,
    # composed into bytes when sent. Read through gateway.outbox.message_bytes().
    raw: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    draft: Mapped[dict | None] = mapped_column(JSONType, nullable=True)
    automatic: Mapped[bool] = mapped_column(Boolean, default=False)
    # pending -> sending -> sent | failed ; bounced after a DSN
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    claimed_by: Mapped[str] = mapped_column(String(100), default="")
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    source_spool_id: Mapped[int | None] = mapped_column(ForeignKey("spool.id"), nullable=True, index=True)


class OutboxAttempt(Base):
    __tablename__ = "outbox_attempts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    ok: Mapped[bool] = mapped_column(Boolean)
    temporary: Mapped[bool] = mapped_column(Boolean, default=False)
    detail: Mapped[str] = mapped_column(Text, default="")


class ImapState(Base):
    __tablename__ = "imap_state"
    mailbox: Mapped[str] = mapped_column(String(200), primary_key=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger, default=0)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)  # last drain to the end
    last_error: Mapped[str] = mapped_column(Text, default="")  # since then; "" after a good sync


class Lease(Base):
    """A named lease: who may drain a mailbox or run a scheduled job right now."""

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200), default="")
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SlaMark(Base):
    """One SLA warning or breach, recorded once (unique), for idempotent jobs and reports."""

    __tablename__ = "sla_marks"
    __table_args__ = (UniqueConstraint("ticket_id", "kind", "deadline"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))  # first_response_warning|first_response_breach|resolution_...
    deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    handler: Mapped[str] = mapped_column(String(320), default="")
    priority: Mapped[str] = mapped_column(String(4), default="")


class JobRun(Base):
    """A scheduled job's run for one due time: the unique key makes it run once across processes."""

    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("job", "due_key"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(100))
    due_key: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    holder: Mapped[str] = mapped_column(String(200), default="")


class SurveyResponse(Base):
    __tablename__ = "survey_responses"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    engineers: Mapped[list] = mapped_column(JSONType, default=list)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    token: Mapped[str] = mapped_column(String(200), default="")


class KbArticle(Base):
    __tablename__ = "kb_articles"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), nullable=True)
    title: Mapped[str] = mapped_column(Text)
    tags: Mapped[list] = mapped_column(JSONType, default=list)
    problem: Mapped[str] = mapped_column(Text, default="")
    solution: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RulesGeneration(Base):
    """A routing-rules file put in force; the newest row is what every process applies."""

    __tablename__ = "rules_generations"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)  # the generation
    sha256: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(1000), default="")  # the file it was read from
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    published_by: Mapped[str] = mapped_column(String(200), default="")  # host:pid of the edge


class AuditEntry(Base):
    """An operation not about one living ticket (an erasure, the retention job). No personal data."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    kind: Mapped[str] = mapped_column(String(40))  # customer_erased | customer_exported | retention
    actor: Mapped[str] = mapped_column(String(320), default="system")
    data: Mapped[dict] = mapped_column(JSONType, default=dict)


class InstallationMark(Base):
    """What every gateway on this database must share (gateway/runtime/installation.py): the data_dir's
    identity and a check value of the secret key (never the key)."""

    __tablename__ = "installation"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)  # data_dir_id | key_check
    value: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    by: Mapped[str] = mapped_column(String(200), default="")  # host:pid that recorded it
