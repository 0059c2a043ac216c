"""Gateway configuration: `supportgw.toml`, validated by pydantic at start.

Owns the file format and the default file `supportgw init` writes. Errors name
the file, the key and what is expected, so a bad config fails before anything
listens.
"""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator


class ConfigError(Exception):
    """A configuration problem, worded for the person who edits the file."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Secret(_Strict):
    """A secret given inline (discouraged), by environment variable or by file."""

    value: str | None = None
    env: str | None = None
    file: str | None = None
    _origin: str = PrivateAttr(default="")  # the configuration file it was read from
    _base_dir: Path = PrivateAttr(default=Path("."))  # a relative 'file =' is relative to that file's folder

    def resolve(self, what: str) -> str:
        if self._origin:
            what = f"{self._origin}: {what}"
        if self.env:
            if self.env not in os.environ:
                raise ConfigError(f"{what}: environment variable {self.env} is not set; export it or use 'file ='")
            return os.environ[self.env]
        if self.file:
            path = self._base_dir / self.file
            try:
                mode = path.stat().st_mode
            except OSError as exc:
                raise ConfigError(f"{what}: cannot read secret file {path}: {exc.strerror}") from exc
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise ConfigError(f"{what}: secret file {path} is readable by others; run 'chmod 600 {path}'")
            return path.read_text(encoding="utf-8").strip()
        return self.value or ""


def _secret(v):
    if isinstance(v, str):
        return {"value": v}
    return v


class GatewaySection(_Strict):
    domain: str = "support.example.test"
    support_addresses: list[str] = ["support@support.example.test"]
    display_name: str = "Support"
    data_dir: str = "var"
    ref_prefix: str = "TS"
    # Processing and outbound dispatch run in this many worker processes, so the CPU-heavy
    # part never slows the SMTP edge (GIL); 0 keeps them as threads in the main process.
    workers: int = Field(default=1, ge=0, le=16)
    language: Literal["auto", "en", "zh-CN"] = "auto"
    # Inbound messages larger than this are streamed to a file under data_dir/spool-blobs
    # instead of being held in memory and stored in the database row.
    spool_inline_max: int = Field(default=1024 * 1024, ge=4096)
    secret_key: Secret = Field(default_factory=lambda: Secret(file=None, value=None))

    _norm = field_validator("secret_key", mode="before")(_secret)

    @field_validator("support_addresses")
    @classmethod
    def _lower(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one support address is needed")
        for a in v:
            if "@" not in a:
                raise ValueError(f"{a!r} is not an email address")
        return [a.lower() for a in v]


class DatabaseSection(_Strict):
    url: str = ""  # empty: sqlite:///<data_dir>/supportgw.db
    pool_size: int = 5
    connect_timeout: int = 5


class SmtpSection(_Strict):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=2525, ge=1, le=65535)
    max_message_size: int = 25 * 1024 * 1024
    max_connections_per_ip: int = 20
    max_messages_per_ip_per_minute: int = 600  # 0: no limit (token bucket, refused with 421 at MAIL)
    tls_cert: str = ""
    tls_key: str = ""
    require_auth: bool = False
    auth_users: dict[str, Secret] = {}

    _norm = field_validator("auth_users", mode="before")(
        lambda v: {k: _secret(s) for k, s in v.items()} if isinstance(v, dict) else v
    )


class OutboundSection(_Strict):
    smtp_host: str = ""  # empty: write to the <data_dir>/sent Maildir
    smtp_port: int = Field(default=25, ge=1, le=65535)
    starttls: bool = False
    tls: bool = False
    username: str = ""
    password: Secret = Field(default_factory=Secret)
    timeout: float = 30.0
    max_attempts: int = 8
    backoff_base: float = 30.0
    poll_interval: float = 1.0
    rate_limit_per_hour: int = 10  # automatic mails per correspondent
    repeat_limit_per_hour: int = 3  # near-identical mails from one sender before it counts as a loop (0: off)

    _norm = field_validator("password", mode="before")(_secret)


class ImapMailbox(_Strict):
    name: str
    host: str
    port: int = Field(default=993, ge=1, le=65535)
    security: Literal["tls", "starttls", "plain"] = "tls"
    username: str
    password: Secret = Field(default_factory=Secret)
    folder: str = "INBOX"
    after: Literal["seen", "move", "delete"] = "seen"
    move_to: str = "Processed"
    poll_interval: float = 60.0
    idle: bool = True
    batch_size: int = 50
    timeout: float = 60.0
    lease_seconds: float = 30.0  # another gateway takes over this long after this one dies

    _norm = field_validator("password", mode="before")(_secret)

    @model_validator(mode="after")
    def _plain_only_on_loopback(self):
        if self.security == "plain" and self.host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"security = 'plain' is allowed on loopback only, not {self.host}; use 'tls' or 'starttls'")
        return self


class RoutingSection(_Strict):
    rules_file: str = ""  # empty: the sample rules shipped with the project


class WorkflowSection(_Strict):
    status_after_reply: Literal["open", "pending"] = "pending"
    reopen_window_days: int = 14
    pending_reminder_hours: float = 72
    pending_autoresolve_hours: float = 168
    stranger_policy: Literal["new_ticket", "hold", "reject"] = "new_ticket"
    relay_to_cc: bool = True
    attachment_link_over: int = 10 * 1024 * 1024
    trust_dmarc: bool = False
    sla_warn_share: float = 0.75
    sla_check_seconds: float = 60  # how often the SLA watch runs (breaches are recorded at the deadline)
    kb_suggestions: int = 0
    # Optional one-click survey pages (gateway/survey_web.py), off by default: survey_url is
    # the public base URL put in closure emails; they are served by [web] listen (survey_listen
    # is its older name, still honoured when [web] listen is empty).
    survey_url: str = ""
    survey_listen: str = ""


class ReportSection(_Strict):
    weekly: bool = False
    day: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = "mon"
    time: str = "08:00"
    timezone: str = "Asia/Shanghai"
    recipients: list[str] = []
    language: Literal["en", "zh-CN"] = "en"
    # the weekly mail's tables per group (gateway/report_split.py); [] for the totals alone
    by: list[Literal["customer", "organisation", "project", "engineer"]] = ["organisation", "project"]


class WebSection(_Strict):
    # "host:port" to serve the web app on (survey pages, /healthz, /readyz, /metrics); empty: off.
    # Meant to sit behind a reverse proxy that adds TLS; bind it to loopback.
    listen: str = ""
    # the public base URL of the web app (https://support.example.com), for the desk's sign-in
    # links; empty: the address the request came to
    public_url: str = ""

    @field_validator("listen")
    @classmethod
    def _host_port(cls, v: str) -> str:
        if v:
            _, sep, port = v.rpartition(":")
            if not sep or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{v!r} is not host:port (for example \"127.0.0.1:8080\")")
        return v


class HealthSection(_Strict):
    """Thresholds of /readyz and `supportgw health` (gateway/health.py)."""

    spool_max_age_seconds: float = Field(default=300, gt=0)  # oldest unprocessed message / overdue mail
    imap_max_sync_age_seconds: float = Field(default=0, ge=0)  # 0: 3 x the mailbox's poll_interval + 60
    outbox_failed_window_minutes: int = Field(default=60, ge=1)  # failed-for-good mail this recent is a problem


class LogSection(_Strict):
    # text: one readable line per event; json: one JSON object per line (for a log shipper)
    format: Literal["text", "json"] = "text"
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class RetentionSection(_Strict):
    """How long things are kept, in days; 0 keeps them forever. Applied nightly (gateway/retention.py)."""

    spool_raw_days: int = Field(default=90, ge=0)  # raw bytes of processed spool rows (the row stays)
    attachments_days: int = Field(default=0, ge=0)  # attachment files of closed tickets
    closed_tickets_days: int = Field(default=0, ge=0)  # closed tickets, with their messages, removed whole
    quarantined_days: int = Field(default=180, ge=0)  # quarantined and dropped spool rows
    suspended_days: int = Field(default=180, ge=0)  # suspended mail, where that area exists
    time: str = "03:30"  # when the nightly job runs (report timezone)


class Config(_Strict):
    gateway: GatewaySection = Field(default_factory=GatewaySection)
    database: DatabaseSection = Field(default_factory=DatabaseSection)
    smtp: SmtpSection = Field(default_factory=SmtpSection)
    outbound: OutboundSection = Field(default_factory=OutboundSection)
    imap: list[ImapMailbox] = []
    routing: RoutingSection = Field(default_factory=RoutingSection)
    workflow: WorkflowSection = Field(default_factory=WorkflowSection)
    report: ReportSection = Field(default_factory=ReportSection)
    web: WebSection = Field(default_factory=WebSection)
    health: HealthSection = Field(default_factory=HealthSection)
    log: LogSection = Field(default_factory=LogSection)
    retention: RetentionSection = Field(default_factory=RetentionSection)

    # Where the file was read from; relative paths in it are relative to its folder.
    base_dir: Path = Field(default=Path("."), exclude=True)
    source: str = Field(default="<config>", exclude=True)

    def secrets(self) -> list[Secret]:
        return ([self.gateway.secret_key, self.outbound.password, *self.smtp.auth_users.values()]
                + [mb.password for mb in self.imap])

    def path(self, p: str) -> Path:
        q = Path(p)
        return q if q.is_absolute() else (self.base_dir / q)

    @property
    def data_dir(self) -> Path:
        return self.path(self.gateway.data_dir)

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.data_dir / 'supportgw.db'}"

    @property
    def rules_path(self) -> Path:
        if self.routing.rules_file:
            return self.path(self.routing.rules_file)
        return Path(__file__).resolve().parent.parent / "routing" / "sample_rules.toml"

    @property
    def support_address(self) -> str:
        return self.gateway.support_addresses[0]


def _describe(err: ValidationError, file: str) -> str:
    lines = [f"invalid configuration in {file}:"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see README 'Configuration reference')"
        lines.append(f"  {key}: {msg}")
    return "\n".join(lines)


def parse_config(data: dict, *, file: str = "<config>", base_dir: Path = Path(".")) -> Config:
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, file)) from None
    cfg.base_dir, cfg.source = base_dir, file
    for secret in cfg.secrets():
        secret._origin, secret._base_dir = file, base_dir
    return cfg


def find_config_path(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit)
    if os.environ.get("SUPPORTGW_CONFIG"):
        return Path(os.environ["SUPPORTGW_CONFIG"])
    return Path("supportgw.toml")


def load_config(path: Path) -> Config:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"no configuration at {path}: run 'supportgw init' to write a default one") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(data, file=str(path), base_dir=path.resolve().parent)


DEFAULT_CONFIG = """\
# supportgw configuration. Reference: README.md, "Configuration reference".

[gateway]
domain = "support.example.test"
support_addresses = ["support@support.example.test", "security@support.example.test"]
display_name = "Example Support"
data_dir = "var"
ref_prefix = "TS"
# HMAC key for signed reply addresses and survey links. Generated by 'supportgw init'.
secret_key = { file = "var/secret.key" }

[database]
# Empty: SQLite under data_dir. For several gateways: "postgresql+psycopg://user@host/db"
url = ""

[smtp]
host = "127.0.0.1"
port = 2525
max_message_size = 26214400

[outbound]
# Empty smtp_host: outgoing mail is written to the Maildir var/sent/ for you to read.
smtp_host = ""

[routing]
# Empty: the bilingual sample rules shipped in routing/sample_rules.toml.
rules_file = ""

# [[imap]]
# name = "helpdesk"
# host = "imap.example.com"
# security = "tls"
# username = "support@example.com"
# password = { env = "SUPPORTGW_IMAP_PASSWORD" }
# after = "move"        # seen | move | delete
# move_to = "Processed"
"""
