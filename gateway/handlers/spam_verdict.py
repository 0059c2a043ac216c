"""The spam verdict on one inbound mail, before any ticket: rspamd and upstream filters.

`judge(ib) -> Verdict | None`: None when nothing was asked (no engine configured and
no upstream verdict from a trusted hop). The suspended area (gateway/handlers/suspend.py)
acts on the verdict; this module only collects it, and never loses or holds mail:
an engine that is down or slow gives the verdict "unchecked", the mail goes on, and
`health()` (and the log, once per change) says so.

Upstream verdicts (the gateway behind an MTA, or reading a hosted mailbox):
SpamAssassin (X-Spam-Flag, X-Spam-Status), rspamd (X-Spam, X-Spamd-Result),
Microsoft 365 (X-MS-Exchange-Organization-SCL, X-Forefront-Antispam-Report). Anyone
can write such a header into their own mail, so they count only when the topmost
Received line, the one our own side wrote, is "by" a host named in [spam]
trusted_hops; and where a header occurs more than once the most spammy instance
wins, so a forged "not spam" below the real one can never lower the verdict.

The engine: rspamd's normal worker answers `POST /checkv2` with the raw message and
the envelope as headers (From, Rcpt, IP, Helo, Queue-Id); its action is mapped to
suspend or not by [spam] suspend_actions. A person's release or drop teaches the
controller (`/learnham`, `/learnspam`) when [spam] controller_url is set.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

log = logging.getLogger("supportgw.spam")


@dataclass(frozen=True)
class Verdict:
    source: str  # "rspamd", "upstream:spamassassin", "upstream:rspamd", "upstream:microsoft365", "unchecked"
    suspend: bool
    quiet: bool = False  # not suspended, but no acknowledgement either ([spam] quiet_actions)
    score: float | None = None
    action: str = ""
    reasons: tuple[str, ...] = ()
    symbols: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {"source": self.source, "suspend": self.suspend, "quiet": self.quiet, "score": self.score, "action": self.action,
                "reasons": list(self.reasons), "symbols": list(self.symbols)}


# --- upstream headers ---------------------------------------------------------------------

_BY = re.compile(r"\bby\s+\[?([A-Za-z0-9.:_-]+)\]?", re.I)


def trusted_hop(headers, trusted: list[str]) -> str:
    """The trusted host that wrote the topmost Received line, or "" when it is not one of ours."""
    if not trusted:
        return ""
    top = next((v for k, v in headers if k.lower() == "received"), "")
    m = _BY.search(top)
    host = m.group(1).lower().rstrip(".") if m else ""
    for t in trusted:
        if host and (host == t or host.endswith("." + t)):
            return host
    return ""


def _float(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _spamassassin(values: dict) -> list[tuple[bool, float | None, str]]:
    out = []
    for v in values.get("x-spam-flag", []):
        out.append((v.strip().lower() == "yes", None, f"X-Spam-Flag: {v.strip()[:40]}"))
    for v in values.get("x-spam-status", []):
        m = re.match(r"\s*(yes|no)\b", v, re.I)
        score = re.search(r"score=(-?[\d.]+)", v)
        if m:
            out.append((m.group(1).lower() == "yes", _float(score.group(1)) if score else None,
                        f"X-Spam-Status: {v.strip()[:80]}"))
    return out


def _rspamd_headers(values: dict) -> list[tuple[bool, float | None, str]]:
    out = []
    for v in values.get("x-spam", []):
        out.append((v.strip().lower() in ("yes", "true"), None, f"X-Spam: {v.strip()[:40]}"))
    for v in values.get("x-spamd-result", []):
        m = re.search(r"default:\s*(true|false)\s*\[\s*(-?[\d.]+)\s*/\s*(-?[\d.]+)\s*\]", v, re.I)
        if m:
            out.append((m.group(1).lower() == "true", _float(m.group(2)), f"X-Spamd-Result: {v.strip()[:80]}"))
    return out


def _microsoft(values: dict, scl_threshold: int) -> list[tuple[bool, float | None, str]]:
    out = []
    for v in values.get("x-ms-exchange-organization-scl", []):
        scl = _float(v.strip())
        if scl is not None:
            out.append((scl >= scl_threshold, scl, f"X-MS-Exchange-Organization-SCL: {v.strip()}"))
    for v in values.get("x-forefront-antispam-report", []):
        fields = dict(p.split(":", 1) for p in v.replace(" ", "").split(";") if ":" in p)
        sfv = fields.get("SFV", "").upper()
        scl = _float(fields.get("SCL", ""))
        spam = sfv in ("SPM", "SKS", "SKB") or (scl is not None and scl >= scl_threshold)
        if sfv or scl is not None:
            out.append((spam, scl, f"X-Forefront-Antispam-Report: SFV:{sfv or '-'} SCL:{fields.get('SCL', '-')}"))
    return out


def upstream(headers, cfg) -> Verdict | None:
    hop = trusted_hop(headers, cfg.trusted_hops)
    if not hop:
        return None
    values: dict[str, list[str]] = {}
    for k, v in headers:
        values.setdefault(k.lower(), []).append(v)
    for source, found in (("spamassassin", _spamassassin(values)), ("rspamd", _rspamd_headers(values)),
                          ("microsoft365", _microsoft(values, cfg.scl_threshold))):
        if not found:
            continue
        spam = [f for f in found if f[0]]
        chosen = spam or found  # the most spammy instance wins: a forged "no" cannot lower it
        scores = [s for _, s, _ in chosen if s is not None]
        return Verdict(f"upstream:{source}", bool(spam), score=max(scores) if scores else None,
                       action="spam" if spam else "",
                       reasons=tuple(f"upstream {source} (received by {hop}): {why}" for _, _, why in chosen))
    return None


# --- rspamd --------------------------------------------------------------------------------

class _Health:
    """Is the engine answering? Logged once per change, read by `health()`."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.down_since: float | None = None
        self.last_error = ""

    def ok(self, url: str) -> None:
        with self.lock:
            if self.down_since is not None:
                log.warning("spam engine at %s answers again", url)
            self.down_since, self.last_error = None, ""

    def failed(self, url: str, error: str) -> None:
        with self.lock:
            if self.down_since is None:
                self.down_since = time.time()
                log.warning("spam engine at %s is not answering (%s): mail is accepted and processed unchecked",
                            url, error)
            self.last_error = error


_health = _Health()


def health(app, *, probe: bool = False) -> str:
    """One line for operators: is the configured engine checking mail? `probe`: ask it now
    (GET /ping), for a command run in a process that has not sent it any mail."""
    cfg = app.config.spam
    if cfg.engine == "none":
        return "spam engine: none (upstream headers from trusted hops and the gateway's own robot rules)"
    if probe:
        try:
            with urllib.request.urlopen(cfg.url.rstrip("/") + "/ping", timeout=cfg.timeout) as resp:
                resp.read()
            _health.ok(cfg.url)
        except (OSError, ValueError) as exc:
            _health.failed(cfg.url, f"{type(exc).__name__}: {exc}"[:200])
    if _health.down_since is None:
        return f"spam engine: {cfg.engine} at {cfg.url}: ok"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(_health.down_since))
    return f"spam engine: {cfg.engine} at {cfg.url}: DOWN since {since} ({_health.last_error}); mail is processed unchecked"


def _post(url: str, body: bytes, headers: dict | list, timeout: float) -> dict:
    req = urllib.request.Request(url, data=body, method="POST")
    for k, v in (headers.items() if isinstance(headers, dict) else headers):
        req.add_header(k, v)
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read().decode("utf-8", "replace"))


def rspamd_check(app, entry, raw: bytes) -> Verdict:
    cfg = app.config.spam
    headers = [("Queue-Id", str(entry.id))]
    if entry.envelope_from:
        headers.append(("From", entry.envelope_from))
    for rcpt in entry.envelope_to or []:
        headers.append(("Rcpt", rcpt))
    if entry.client_ip:
        headers.append(("IP", entry.client_ip))
    if entry.helo:
        headers.append(("Helo", entry.helo))
    url = cfg.url.rstrip("/") + "/checkv2"
    try:
        answer = _post(url, raw, headers, cfg.timeout)
    except (OSError, ValueError, urllib.error.URLError) as exc:  # refused, timed out, garbage: never block mail
        _health.failed(cfg.url, f"{type(exc).__name__}: {exc}"[:200])
        return Verdict("unchecked", False, reasons=(f"rspamd did not answer: {type(exc).__name__}",))
    _health.ok(cfg.url)
    action = str(answer.get("action", ""))
    score = _float(answer.get("score"))
    symbols = tuple(sorted((answer.get("symbols") or {}).keys()))
    top = sorted(((s.get("score") or 0, name) for name, s in (answer.get("symbols") or {}).items()
                  if isinstance(s, dict)), reverse=True)[:8]
    suspend = action in cfg.suspend_actions
    why = f"rspamd: action '{action}', score {score} of {answer.get('required_score')}"
    if top:
        why += " (" + ", ".join(f"{n} {sc:+g}" for sc, n in top if sc) + ")"
    return Verdict("rspamd", suspend, quiet=not suspend and action in cfg.quiet_actions, score=score, action=action,
                   reasons=(why,), symbols=symbols)


def judge(ib) -> Verdict | None:
    """The verdict for this mail: a trusted upstream's "spam" first (it saw the SMTP session),
    then the engine's, if one is configured."""
    app, cfg = ib.app, ib.app.config.spam
    up = upstream(ib.email.headers, cfg)
    if up is not None and up.suspend:
        return up
    if cfg.engine == "rspamd":
        from gateway.large_mail import scan_bytes

        return rspamd_check(app, ib.entry, scan_bytes(app, ib.entry))
    return up


def learn_many(app, spool_ids: list[int], kind: str) -> int:
    """Teach the controller that these messages are `kind` ("ham" or "spam"); how many it took.

    Best effort: the person's decision is already recorded; a controller that is down only
    costs the lesson (logged)."""
    cfg = app.config.spam
    if cfg.engine != "rspamd" or not cfg.controller_url or not spool_ids:
        return 0
    from storage.queries import spool as spool_rows
    from storage.spool import raw_bytes

    password = cfg.controller_password.resolve("spam.controller_password")
    url = cfg.controller_url.rstrip("/") + ("/learnham" if kind == "ham" else "/learnspam")
    taught = 0
    with app.db.session() as s:
        for entry in spool_rows.entries(s, spool_ids):
            try:
                answer = _post(url, raw_bytes(app.spool_blobs, entry), {"Password": password} if password else {},
                               cfg.timeout)
            except urllib.error.HTTPError as exc:  # e.g. 208 "already learned", 400 too few tokens
                log.info("rspamd %s for spool %s: %s", url.rsplit("/", 1)[1], entry.id, exc)
                continue
            except (OSError, ValueError) as exc:
                log.warning("rspamd controller %s did not take spool %s: %s", cfg.controller_url, entry.id, exc)
                continue
            if answer.get("success"):
                taught += 1
            else:
                log.info("rspamd %s for spool %s: %s", url.rsplit("/", 1)[1], entry.id, answer.get("error"))
    return taught
