"""The running gateway's shared context: config, database, rules, clock, signer.

Built once by the CLI (or a test) and handed to every edge and job. Holds no
per-request state.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from gateway.clock import SystemClock
from gateway.config import Config, ConfigError
from gateway.tokens import Signer
from storage.attachments import AttachmentStore
from storage.db import Database
from templates import Templates

log = logging.getLogger("supportgw")


@dataclass
class App:
    config: Config
    db: Database
    signer: Signer
    templates: Templates
    attachments: AttachmentStore
    spool_blobs: AttachmentStore  # large inbound messages, streamed to files (storage/spool.py)
    rules: object  # routing.loader.RulesHolder
    clock: object = field(default_factory=SystemClock)
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    # Set when the rules file is broken and the caller said it does not route (build_app's
    # rules_optional): `rules` then holds no engineers, customers or rules at all.
    rules_error: str = ""

    @property
    def own_addresses(self) -> tuple[str, ...]:
        return self._own()[0]

    def _own(self) -> tuple:
        """(own addresses, their (local part, domain) pairs), made once per configuration: asked
        several times for every message."""
        cached = self.__dict__.get("_own_cache")
        if cached is None or cached[0] is not self.config:
            cfg = self.config.gateway
            addresses = tuple(self.config.all_support_addresses) + (f"bounces@{cfg.domain}",)
            pairs = frozenset((local, domain) for local, _, domain in (a.rpartition("@") for a in addresses))
            cached = self.__dict__["_own_cache"] = (self.config, addresses, pairs)
        return cached[1:]

    def brand_of(self, ticket=None, address: str = ""):
        """The [[address]] entry mail on `ticket` goes out as: the ticket's own, else `address`
        (mail on no ticket, such as a status list: the address the customer wrote to)."""
        return self.config.brand((getattr(ticket, "address", "") if ticket is not None else "") or address)

    def templates_for(self, ticket=None, address: str = ""):
        """The templates of mail on `ticket` (or from `address`): its [[address]]'s folder and
        signature, if any."""
        brand = self.brand_of(ticket, address)
        if brand is None:
            return self.templates
        return self.templates.variant(self.config.path(brand.templates) if brand.templates else None,
                                      brand.signature)

    def team_name(self, ticket=None, address: str = "") -> str:
        """The sender name of mail on `ticket` (or from `address`): its [[address]]'s display name,
        else gateway.display_name."""
        brand = self.brand_of(ticket, address)
        return (brand.display_name if brand else "") or self.config.gateway.display_name

    def is_own_address(self, address: str) -> bool:
        """Our support addresses, their +token forms, and our bounce address."""
        local, _, domain = address.lower().rpartition("@")
        return (local.split("+", 1)[0], domain) in self._own()[1]

    def now(self):
        return self.clock.now()

    def route(self, email, *, recipients: tuple[str, ...], now):
        from routing.engine import route

        return route(email, self.rules.current, recipients=recipients, now=now)

    def engineer_addresses(self) -> frozenset[str]:
        return self.rules.current.engineer_emails

    def scrub_engineer_addresses(self, text: str) -> str:
        """No engineer's personal address leaves in a customer mail, even typed into the text:
        each is replaced by the support address."""
        import re

        support = self.config.support_address
        for addr in sorted(self.engineer_addresses(), key=len, reverse=True):
            text = re.sub(re.escape(addr), support, text, flags=re.IGNORECASE)
        return text

    def is_ours(self, address: str, engineers: frozenset[str] | None = None) -> bool:
        """Our support addresses or an engineer's: never a customer recipient (DOMAIN.md §9).
        `engineers`: engineer_addresses(), when the caller asks for many addresses."""
        address = (address or "").lower()
        return self.is_own_address(address) or address in (
            engineers if engineers is not None else self.engineer_addresses())


def load_secret_key(config: Config) -> bytes:
    key = config.gateway.secret_key.resolve("gateway.secret_key")
    if not key:
        env = os.environ.get("SUPPORTGW_SECRET_KEY", "")
        if env:
            return env.encode()
        raise ConfigError(
            "gateway.secret_key is not set: run 'supportgw init' to generate var/secret.key, "
            "or set SUPPORTGW_SECRET_KEY"
        )
    return key.encode()


class NoRules:
    """Stands in for `routing.loader.RulesHolder` when the rules file cannot be loaded and
    the command at hand routes nothing (`tickets list`, `outbox show`, `report`): empty
    rules, never reloaded. A gateway that routes always starts from real rules."""

    def __init__(self, path: Path, error: Exception) -> None:
        from routing.compiler import compile_rules
        from routing.config import RulesFile

        self.path, self.last_error = path, error
        self.current = compile_rules(RulesFile(priority_matrix={}, sla={}), path)

    def reload(self) -> bool:
        return False

    def reload_if_changed(self) -> bool:
        return False


def check_database(config: Config) -> None:
    """Connect once before anything else: a bad `database.url` (refused, unknown host, wrong
    password, `postgres://`, a missing driver) is one line naming the file and the key."""
    from storage.db import DatabaseUrlError, check_url

    try:
        check_url(config.database_url, connect_timeout=config.database.connect_timeout)
    except DatabaseUrlError as exc:
        key = "database.url" if config.database.url else "database.url (empty: SQLite under gateway.data_dir)"
        raise ConfigError(f"{config.source}: {key}: {exc}") from None


def build_app(config: Config, *, clock=None, migrate: bool = True, rules_optional: bool = False,
              rules_from_database: bool = False) -> App:
    """The shared context. `rules_optional`: a broken rules file is not fatal (the caller
    routes nothing); `App.rules_error` then says what is wrong, for one warning.
    `rules_from_database`: start with the rules generation in force on the database
    (gateway.rules_sync), the file only when none was published yet: a worker process
    restarted while the file is broken keeps the rules every other process applies."""
    from routing.loader import RulesHolder
    from storage.migrate import upgrade

    data_dir = config.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    url = config.database_url
    if migrate:
        check_database(config)
        upgrade(url)
    db = Database(url, pool_size=config.database.pool_size, connect_timeout=config.database.connect_timeout)
    from routing.loader import RulesError

    rules_error = ""
    try:
        rules = None
        if rules_from_database:
            from gateway.rules_sync import holder_from_database

            rules = holder_from_database(db, Path(config.rules_path))
        rules = rules or RulesHolder(Path(config.rules_path))
    except RulesError as exc:
        if not rules_optional:
            raise ConfigError(f"routing rules cannot be loaded; fix them ('supportgw rules check'):\n{exc}") from None
        n = len(exc.problems)
        rules_error = (f"the routing rules in {config.rules_path} cannot be loaded ({n} problem{'s' if n != 1 else ''}; "
                       f"'supportgw rules check' lists them): engineers' names and the customer directory are "
                       f"not available to this command")
        rules = NoRules(Path(config.rules_path), exc)
    templates = Templates()
    templates.name_organisations(lambda oid: getattr(rules.current.source.customers.get(oid), "name", ""))
    return App(
        config=config,
        db=db,
        signer=Signer(load_secret_key(config)),
        templates=templates,
        attachments=AttachmentStore(data_dir / "attachments"),
        spool_blobs=AttachmentStore(data_dir / "spool-blobs"),
        rules=rules,
        clock=clock or SystemClock(),
        rules_error=rules_error,
    )
