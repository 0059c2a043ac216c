"""How the running gateway's log lines look: `[log] format = "text" | "json"`.

One line per event. Call sites log as usual and may add facts with
`extra={"ticket": ..., "message_id": ..., "source": ..., "handler": ..., "outcome": ...}`;
the JSON format puts every such field in the object, the text format appends
those its message does not already say as `key=value`. Nothing needs to know which format is in force.

Whatever the format, a filter on the handler removes what must never be in a
log: every secret of the configuration (secret key, passwords) and the
signed token of our reply addresses (support+TOKEN@...), wherever it appears
in the final line (message, arguments, traceback). Message bodies are not
logged by any call site; the tests grep a whole run's log for them.

Owns the formatters and the handler of the root logger; not the call sites.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import datetime, timezone

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(processrole)s%(name)s: %(message)s"


def _extras(record: logging.LogRecord) -> dict:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and k != "processrole"}


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        message = record.getMessage()
        # a person reads these lines: a fact the message already says, or an empty one, is not repeated
        extras = {k: v for k, v in _extras(record).items() if v not in ("", None) and str(v) not in message}
        if extras:
            line += " [" + " ".join(f"{k}={v}" for k, v in extras.items()) + "]"
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, process, msg, the extra fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
               "level": record.levelname, "logger": record.name,
               "process": getattr(record, "processrole", "").strip() or "gateway", "pid": record.process,
               "msg": record.getMessage()}
        for k, v in _extras(record).items():
            out[k] = v if isinstance(v, (str, int, float, bool, type(None))) else str(v)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exc"] = record.exc_text
        return json.dumps(out, ensure_ascii=False)


class Redactor(logging.Filter):
    """Replaces secrets and reply-address tokens in a record before any formatter sees it."""

    def __init__(self, secrets: list[str], own_addresses: tuple[str, ...] = (), role: str = "") -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)
        locals_ = sorted({a.rpartition("@")[0] for a in own_addresses if "@" in a})
        self.token = re.compile(r"\b(" + "|".join(map(re.escape, locals_)) + r")\+[^@\s<>\"',;]+@",
                                re.IGNORECASE) if locals_ else None
        self.role = role

    def clean(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[secret]")
        if self.token is not None:
            text = self.token.sub(r"\1+[token]@", text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        record.processrole = f"{self.role} " if self.role else ""
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: log what there is rather than nothing
            message = str(record.msg)
        record.msg, record.args = self.clean(message), None
        for k, v in _extras(record).items():
            if isinstance(v, str):
                setattr(record, k, self.clean(v))
        if record.exc_info:
            record.exc_text = self.clean(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def config_secrets(config) -> list[str]:
    values = []
    for secret in config.secrets():
        try:
            values.append(secret.resolve("log redaction"))
        except Exception:  # an unreadable secret is reported where it is used, not here
            pass
    return values


def configure(config, *, role: str = "", stream=None) -> logging.Handler:
    """Put one handler on the root logger with the configured format and the redactor."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if config.log.format == "json" else TextFormatter())
    cfg = config.gateway
    own = tuple(cfg.support_addresses) + (f"bounces@{cfg.domain}",)
    handler.addFilter(Redactor(config_secrets(config), own, role))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    if root.level != logging.DEBUG:  # -v wins
        root.setLevel(config.log.level)
    return handler
