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


class OAuthSettings(_Strict):
    """OAuth 2.0 for one IMAP mailbox or the outbound relay (gateway/oauth/tokens.py).

    `provider` gives the documented endpoints and scopes of Microsoft 365 or Google;
    `generic` needs `token_url` (and `device_authorization_url` for `flow = "device"`).
    The account logged in as is the mailbox's `username`."""

    provider: Literal["microsoft", "google", "generic"] = "generic"
    # device (RFC 8628) or authorization_code (a browser, PKCE, loopback redirect): an
    # administrator signs in once (`supportgw oauth login NAME`), the refresh token is kept in
    # data_dir/oauth/; client_credentials: app-only, no sign-in. Empty: authorization_code for
    # Google (its device flow does not allow the Gmail scope), device for the others.
    flow: Literal["", "device", "authorization_code", "client_credentials"] = ""
    client_id: str
    client_secret: Secret = Field(default_factory=Secret)  # empty: a public client
    tenant: str = "organizations"  # Microsoft: the directory (tenant) id or domain
    scopes: list[str] = []  # empty: the provider's defaults for IMAP and SMTP
    mechanism: Literal["xoauth2", "oauthbearer"] = "xoauth2"
    token_url: str = ""  # empty: the provider's
    device_authorization_url: str = ""  # empty: the provider's
    authorization_url: str = ""  # empty: the provider's (flow = authorization_code)
    redirect_port: int = Field(default=8765, ge=1024, le=65535)  # http://127.0.0.1:PORT/ during the sign-in
    refresh_margin: float = Field(default=300.0, ge=0)  # refresh this long before the token expires
    http_timeout: float = 30.0

    _norm = field_validator("client_secret", mode="before")(_secret)

    @model_validator(mode="after")
    def _generic_needs_endpoints(self):
        if not self.flow:
            self.flow = "authorization_code" if self.provider == "google" else "device"
        if self.provider == "generic":
            if not self.token_url:
                raise ValueError("provider = 'generic' needs 'token_url'")
            if self.flow == "device" and not self.device_authorization_url:
                raise ValueError("provider = 'generic' with flow = 'device' needs 'device_authorization_url'")
            if self.flow == "authorization_code" and not self.authorization_url:
                raise ValueError("provider = 'generic' with flow = 'authorization_code' needs 'authorization_url'")
        if self.flow == "client_credentials" and not (self.client_secret.value or self.client_secret.env
                                                      or self.client_secret.file):
            raise ValueError("flow = 'client_credentials' needs 'client_secret'")
        return self


def _needs_oauth(section, what: str):
    if section.auth == "oauth2" and section.oauth is None:
        raise ValueError(f"auth = 'oauth2' needs an [{what}.oauth] table (provider, client_id, ...)")
    return section


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
    # who is told when the gateway cannot reach a mailbox or the relay by itself any more
    # (an OAuth refresh token revoked or expired); empty: report.recipients
    admins: list[str] = []

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
    auth: Literal["password", "oauth2"] = "password"
    oauth: OAuthSettings | None = None
    timeout: float = 30.0
    max_attempts: int = 8
    backoff_base: float = 30.0
    poll_interval: float = 1.0
    rate_limit_per_hour: int = 10  # automatic mails per correspondent
    repeat_limit_per_hour: int = 3  # near-identical mails from one sender before it counts as a loop (0: off)

    _norm = field_validator("password", mode="before")(_secret)

    @model_validator(mode="after")
    def _oauth_table(self):
        if self.auth == "oauth2" and not self.username:
            raise ValueError("auth = 'oauth2' needs 'username' (the account the relay sends as)")
        return _needs_oauth(self, "outbound")


class ImapMailbox(_Strict):
    name: str
    host: str
    port: int = Field(default=993, ge=1, le=65535)
    security: Literal["tls", "starttls", "plain"] = "tls"
    username: str  # with oauth2: the account (a shared mailbox's address where the provider allows it)
    password: Secret = Field(default_factory=Secret)
    auth: Literal["password", "oauth2"] = "password"
    oauth: OAuthSettings | None = None
    folder: str = "INBOX"
    after: Literal["seen", "move", "delete"] = "seen"
    move_to: str = "Processed"
    poll_interval: float = 60.0
    idle: bool = True
    batch_size: int = 50
    timeout: float = 60.0
    lease_seconds: float = 30.0  # another gateway takes over this long after this one dies
    # The [[address]] (or alias) this mailbox receives for: everything drained from it belongs
    # to that brand, whatever its To header says (a forwarding alias, a distribution list).
    address: str = ""

    _norm = field_validator("password", mode="before")(_secret)

    @field_validator("address")
    @classmethod
    def _lower(cls, v: str) -> str:
        return v.strip().lower()

    @model_validator(mode="after")
    def _plain_only_on_loopback(self):
        if self.security == "plain" and self.host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"security = 'plain' is allowed on loopback only, not {self.host}; use 'tls' or 'starttls'")
        return _needs_oauth(self, "imap")


class AddressEntry(_Strict):
    """One `[[address]]`: a support address (a brand) customers write to, besides or instead of
    gateway.support_addresses. Its tickets' mail to customers goes out from it, under its name."""

    address: str
    aliases: list[str] = []  # also ours; a ticket opened through one belongs to `address`
    display_name: str = ""  # empty: gateway.display_name
    language: Literal["", "auto", "en", "zh-CN"] = ""  # empty: gateway.language
    team: str = ""  # its tickets' team when no routing rule chose another than the default
    signature: str = ""  # ends its mails to customers (acknowledgement, answers, closure)
    templates: str = ""  # a folder: <locale>/<kind>.j2 there replaces the default template

    @field_validator("address")
    @classmethod
    def _one_address(cls, v: str) -> str:
        if "@" not in v:
            raise ValueError(f"{v!r} is not an email address")
        return v.lower()

    @field_validator("aliases")
    @classmethod
    def _addresses(cls, v: list[str]) -> list[str]:
        for a in v:
            if "@" not in a:
                raise ValueError(f"{a!r} is not an email address")
        return [a.lower() for a in v]


class RoutingSection(_Strict):
    rules_file: str = ""  # empty: the sample rules shipped with the project


class WorkflowSection(_Strict):
    status_after_reply: Literal["open", "pending"] = "pending"
    reopen_window_days: int = 14
    pending_reminder_hours: float = 72
    pending_autoresolve_hours: float = 168
    stranger_policy: Literal["new_ticket", "hold", "reject"] = "new_ticket"
    relay_to_cc: bool = True
    # Requester plus CC'd customers on one ticket, and the most recipients of any one mail we
    # send: one inbound mail with thousands of CCs must not make us mail thousands of people.
    max_customer_participants: int = Field(default=20, ge=2, le=500)
    attachment_link_over: int = 10 * 1024 * 1024
    trust_dmarc: bool = False
    # an answer arriving this soon after a colleague's, written without having seen it, is held (0: off)
    collision_minutes: float = 10
    ack_forwarded: bool = False
    # a customer's new question on a resolved/closed ticket opens a linked ticket instead of reopening
    auto_split_new_topic: bool = False  # a customer's mail an engineer forwarded in: acknowledge it to the customer
    sla_warn_share: float = 0.75
    sla_check_seconds: float = 60  # how often the SLA watch runs (breaches are recorded at the deadline)
    kb_suggestions: int = 0
    # Mail older than this (by its Date and Received headers, against the gateway's clock) is
    # filed as history: no acknowledgement, notification or SLA clock (gateway/handlers/history.py). 0: off.
    history_age_days: float = Field(default=7, ge=0)
    # `supportgw import`: a conversation whose last message is older than this is imported closed.
    import_close_after_days: float = Field(default=30, ge=0)
    # Optional one-click survey pages (gateway/edges/survey_web.py), off by default: survey_url is
    # the public base URL put in closure emails; they are served by [web] listen (survey_listen
    # is its older name, still honoured when [web] listen is empty).
    survey_url: str = ""
    survey_listen: str = ""


class SpamSection(_Strict):
    """Mail that is not a person asking for help goes to the suspended area (gateway/handlers/suspend.py)."""

    # "none": upstream verdicts and the gateway's own robot rules only; "rspamd": ask it too
    engine: Literal["none", "rspamd"] = "none"
    url: str = "http://127.0.0.1:11333"  # rspamd's normal worker (POST /checkv2)
    controller_url: str = ""  # rspamd's controller (/learnspam, /learnham); empty: no feedback
    controller_password: Secret = Field(default_factory=Secret)
    timeout: float = Field(default=5.0, gt=0)
    # The rspamd actions that suspend a mail; the others let it through with the verdict kept on
    # the spool row. Only "reject" by default: measured by bench/false_positives.py, rspamd's
    # "add header" (score 6) took half of real customer mail on a gateway without DNS, and
    # losing a customer's mail is the worse failure.
    suspend_actions: list[Literal["reject", "rewrite subject", "add header", "greylist", "soft reject"]] = [
        "reject"]
    # The actions that keep the ticket but send no acknowledgement: a likely spam gets no answer
    # (no backscatter to a forged sender), and a real customer scored there loses only that.
    # Not "add header" by default: measured by bench/false_positives.py --rspamd, it held back
    # the acknowledgement of 197 of 715 real customers' new tickets (offline rspamd) and of no
    # spam that quiet_unaddressed had not already held back.
    quiet_actions: list[Literal["reject", "rewrite subject", "add header", "greylist", "soft reject"]] = [
        "rewrite subject"]
    # A new ticket whose mail names none of our addresses in To or Cc (a blind copy: how spam
    # reaches a mailbox) from a sender we have never had a ticket with gets no acknowledgement;
    # the ticket is kept as usual (gateway/desk/inbound.py: blind_copy_from_stranger). List every
    # address that forwards to us as an [[address]] alias, so its mail counts as addressed to us.
    quiet_unaddressed: bool = True
    # Spam headers written by another filter (SpamAssassin, rspamd, Microsoft 365) count only
    # when the hop that received the mail from outside is one of these (names or IPs, as
    # they appear in its Received: "by" clause); empty: no upstream verdict is honoured.
    trusted_hops: list[str] = []
    scl_threshold: int = Field(default=5, ge=0, le=9)  # Microsoft 365 SCL at or above it is spam
    # Behind an MTA: the authserv-id of our receiving server's Authentication-Results
    # (RFC 8601); only those are read, every other instance is ignored. Empty: not read.
    authserv_id: str = ""
    # Listening on SMTP directly: check SPF, DKIM, ARC and DMARC ourselves (gateway/handlers/sender_auth.py),
    # through this nameserver ("host" or "host:port"; empty: the system's).
    verify_smtp: bool = False
    resolver: str = ""
    suspend_dmarc_fail: bool = True  # DMARC fail where the domain publishes p=reject or p=quarantine
    # mail From: a support address or an engineer that authentication does not pass is suspended
    protect_own_addresses: bool = True
    block: list[str] = []  # sender addresses or domains ("spammer.example", "x@y.example") always suspended
    robots: bool = True  # bounces, auto-replies and challenge-responses that refer to no ticket
    retention_days: int = Field(default=30, ge=1)
    # Tell alert_to (or the managers) when more than this many mails were suspended in an hour; 0: off
    alert_per_hour: int = Field(default=0, ge=0)
    alert_to: list[str] = []

    _norm = field_validator("controller_password", mode="before")(_secret)

    @field_validator("block", "trusted_hops")
    @classmethod
    def _lower_list(cls, v: list[str]) -> list[str]:
        return [a.strip().lower().lstrip("@") for a in v if a.strip()]


class ReportSection(_Strict):
    weekly: bool = False
    day: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = "mon"
    time: str = "08:00"
    timezone: str = "Asia/Shanghai"
    recipients: list[str] = []
    language: Literal["en", "zh-CN"] = "en"
    # the weekly mail's tables per group (gateway/jobs/report_split.py); [] for the totals alone
    by: list[Literal["customer", "organisation", "project", "engineer", "address"]] = ["organisation", "project"]


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
    """Thresholds of /readyz and `supportgw health` (gateway/edges/health.py)."""

    spool_max_age_seconds: float = Field(default=300, gt=0)  # oldest unprocessed message / overdue mail
    imap_max_sync_age_seconds: float = Field(default=0, ge=0)  # 0: 3 x the mailbox's poll_interval + 60
    outbox_failed_window_minutes: int = Field(default=60, ge=1)  # failed-for-good mail this recent is a problem


class LogSection(_Strict):
    # text: one readable line per event; json: one JSON object per line (for a log shipper)
    format: Literal["text", "json"] = "text"
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class RetentionSection(_Strict):
    """How long things are kept, in days; 0 keeps them forever. Applied nightly (gateway/jobs/retention.py)."""

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
    address: list[AddressEntry] = []
    routing: RoutingSection = Field(default_factory=RoutingSection)
    workflow: WorkflowSection = Field(default_factory=WorkflowSection)
    report: ReportSection = Field(default_factory=ReportSection)
    spam: SpamSection = Field(default_factory=SpamSection)
    web: WebSection = Field(default_factory=WebSection)
    health: HealthSection = Field(default_factory=HealthSection)
    log: LogSection = Field(default_factory=LogSection)
    retention: RetentionSection = Field(default_factory=RetentionSection)

    # Where the file was read from; relative paths in it are relative to its folder.
    base_dir: Path = Field(default=Path("."), exclude=True)
    source: str = Field(default="<config>", exclude=True)

    def secrets(self) -> list[Secret]:
        return ([self.gateway.secret_key, self.outbound.password, self.spam.controller_password,
                 *self.smtp.auth_users.values()]
                + [mb.password for mb in self.imap]
                + [x.oauth.client_secret for x in (self.outbound, *self.imap) if x.oauth is not None])

    @model_validator(mode="after")
    def _trust_dmarc_needs_authserv_id(self):
        if self.workflow.trust_dmarc and not self.spam.authserv_id.strip():
            raise ValueError("workflow.trust_dmarc needs spam.authserv_id: the authserv-id our receiving server "
                             "writes in Authentication-Results (any other instance may be forged)")
        return self

    @model_validator(mode="after")
    def _addresses_unique(self):
        seen: list[str] = []
        for entry in self.address:
            seen += [entry.address, *entry.aliases]
        dupes = sorted({a for a in seen if seen.count(a) > 1})
        if dupes:
            raise ValueError(f"[[address]]: each address and alias may appear once; repeated: {', '.join(dupes)}")
        return self

    @property
    def all_support_addresses(self) -> list[str]:
        """gateway.support_addresses, then every [[address]] and alias: all addresses that are ours."""
        out = list(self.gateway.support_addresses)
        for entry in self.address:
            out += [a for a in (entry.address, *entry.aliases) if a not in out]
        return out

    def brand_for(self, recipients) -> AddressEntry | None:
        """The [[address]] the customer wrote to: the first recipient that is one (or its alias,
        a +tag ignored)."""
        by_address = {a: entry for entry in self.address for a in (entry.address, *entry.aliases)}
        for rcpt in recipients:
            local, _, domain = (rcpt or "").lower().rpartition("@")
            entry = by_address.get(f"{local.split('+', 1)[0]}@{domain}")
            if entry is not None:
                return entry
        return None

    def language_for(self, detected: str, brand: AddressEntry | None = None) -> str:
        """The language a mail to the customer is written in: its [[address]]'s, unless that says
        auto or nothing; else gateway.language, unless auto; else the one `detected` in their mail."""
        if brand is not None and brand.language not in ("", "auto"):
            return brand.language
        return detected if self.gateway.language == "auto" else self.gateway.language

    @staticmethod
    def team_for(routed: str, brand: AddressEntry | None, default_team: str) -> str:
        """A new ticket's team: the one routing chose, or the [[address]]'s own where routing fell
        back on its default."""
        return brand.team if brand and brand.team and routed == default_team else routed

    def brand(self, address: str) -> AddressEntry | None:
        return next((e for e in self.address if e.address == (address or "").lower()), None)

    @property
    def admins(self) -> list[str]:
        return self.gateway.admins or self.report.recipients

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


def _check_mailbox_addresses(cfg: Config, file: str) -> None:
    """An [[imap]] `address` names one of the [[address]] entries or their aliases: one line if not."""
    brands = [a for entry in cfg.address for a in (entry.address, *entry.aliases)]
    for mb in cfg.imap:
        if mb.address and mb.address not in brands:
            known = ", ".join(brands) if brands else "none configured"
            raise ConfigError(f"{file}: [[imap]] {mb.name!r}: address = {mb.address!r} is not an [[address]] "
                              f"entry or alias (known: {known})")


def parse_config(data: dict, *, file: str = "<config>", base_dir: Path = Path(".")) -> Config:
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, file)) from None
    _check_mailbox_addresses(cfg, file)
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

[spam]
# Mail that is not a person asking for help (robots that refer to no ticket, blocked senders,
# spam) is kept in the suspended area: 'supportgw suspended list|show|release|drop'.
engine = "none"            # "rspamd": ask it (url = "http://127.0.0.1:11333") before any ticket
block = []                 # addresses or domains always suspended
retention_days = 30
# trusted_hops = ["mx1.example.com"]   # our MTA: its X-Spam-* / SCL verdicts count
# authserv_id = "mx1.example.com"      # our MTA's Authentication-Results (SPF/DKIM/DMARC)
# quiet_unaddressed = true   # no acknowledgement to a stranger whose mail names none of our addresses

# [[imap]]
# name = "helpdesk"
# host = "imap.example.com"
# security = "tls"
# username = "support@example.com"
# password = { env = "SUPPORTGW_IMAP_PASSWORD" }
# after = "move"        # seen | move | delete
# move_to = "Processed"
# Microsoft 365 / Google Workspace: instead of password, OAuth 2.0 (README "OAuth 2.0"),
# then run 'supportgw oauth login helpdesk' once:
# auth = "oauth2"
# oauth = { provider = "microsoft", tenant = "contoso.com", client_id = "..." }
"""
