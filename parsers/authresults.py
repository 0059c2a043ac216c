"""Sender authentication as our own receiving server recorded it (RFC 8601).

Behind an MTA, the server that received the mail from the internet checks SPF, DKIM,
DMARC (and ARC) and writes an Authentication-Results header named by its authserv-id.
Anyone can write such a header into their own mail, so only the topmost header
carrying *our* authserv-id counts (a border MTA removes look-alikes of its own id
when it receives, RFC 8601 §5); every other instance is ignored, and `foreign()`
names them so they can be kept out of what engineers see. Parsing is done by the
`authres` library; the DMARC policy the domain publishes is read from the result's
comment ("dmarc=fail (p=reject dis=none)"), where OpenDMARC, rspamd and Microsoft 365
put it, or from a `policy.published-domain-policy` property.

Pure: decoded headers in, an `AuthResults` value out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import authres

_RANK = {"pass": 3, "neutral": 1, "none": 0, "policy": 1, "softfail": -1, "fail": -2, "permerror": -1,
         "temperror": 0, "hardfail": -2}


@dataclass(frozen=True)
class AuthResults:
    authserv_id: str
    spf: str = "none"
    dkim: str = "none"
    dmarc: str = "none"
    arc: str = "none"
    dmarc_policy: str = ""  # reject | quarantine | none | "" (not said)
    header_from: str = ""  # the From domain DMARC judged
    spf_domain: str = ""  # smtp.mailfrom's domain
    dkim_pass_domains: tuple[str, ...] = ()

    def passes_for(self, domain: str) -> bool:
        """Does anything authenticate `domain` (DMARC pass for it, or an aligned DKIM/SPF pass)?"""
        domain = domain.lower()
        if self.dmarc == "pass" and (not self.header_from or self.header_from == domain):
            return True
        aligned = [d for d in self.dkim_pass_domains if d == domain or domain.endswith("." + d)]
        if aligned:
            return True
        return self.spf == "pass" and bool(self.spf_domain) and (
            self.spf_domain == domain or domain.endswith("." + self.spf_domain))

    def summary(self) -> str:
        policy = f" (p={self.dmarc_policy})" if self.dmarc_policy else ""
        about = f" for {self.header_from}" if self.header_from else ""
        return (f"spf={self.spf} dkim={self.dkim} dmarc={self.dmarc}{policy}{about} arc={self.arc} "
                f"(by {self.authserv_id})")

    def as_dict(self) -> dict:
        return {"authserv_id": self.authserv_id, "spf": self.spf, "dkim": self.dkim, "dmarc": self.dmarc,
                "arc": self.arc, "dmarc_policy": self.dmarc_policy, "header_from": self.header_from,
                "summary": self.summary()}


def _authserv_id(value: str) -> str:
    return value.split(";", 1)[0].strip().split()[0].lower() if value.strip() else ""


def foreign(headers, authserv_id: str) -> list[str]:
    """Authentication-Results headers that are not our server's: information from nobody we trust."""
    ours = authserv_id.lower()
    return [v for k, v in headers if k.lower() == "authentication-results" and _authserv_id(v) != ours]


def _prop(result, ptype: str, name: str) -> str:
    for p in result.properties:
        if p.type == ptype and p.name == name:
            return str(p.value or "").strip().strip('"').lstrip("@").rpartition("@")[2].lower()
    return ""


def _best(current: str, new: str) -> str:
    return new if _RANK.get(new, 0) > _RANK.get(current, 0) or current == "none" else current


def read(headers, authserv_id: str) -> AuthResults | None:
    """The results our server (authserv_id) wrote: the topmost header with that id, or None."""
    ours = authserv_id.strip().lower()
    if not ours:
        return None
    value = next((v for k, v in headers if k.lower() == "authentication-results" and _authserv_id(v) == ours), None)
    if value is None:
        return None
    try:
        parsed = authres.AuthenticationResultsHeader.parse("Authentication-Results: " + " ".join(value.split()))
    except Exception:  # a header we cannot read proves nothing either way
        return AuthResults(ours)
    found = {"spf": "none", "dkim": "none", "dmarc": "none", "arc": "none"}
    header_from = spf_domain = policy = ""
    dkim_pass: list[str] = []
    for r in parsed.results:
        method, result = (r.method or "").lower(), (r.result or "").lower()
        if method not in found:
            continue
        found[method] = _best(found[method], result)
        if method == "dkim" and result == "pass":
            d = _prop(r, "header", "d") or _prop(r, "header", "i")
            if d:
                dkim_pass.append(d)
        elif method == "spf":
            spf_domain = spf_domain or _prop(r, "smtp", "mailfrom") or _prop(r, "smtp", "helo")
        elif method == "dmarc":
            header_from = header_from or _prop(r, "header", "from")
            policy = policy or _prop(r, "policy", "published-domain-policy") or _prop(r, "policy", "dmarc")
    if not policy:
        m = re.search(r"\bdmarc\s*=\s*\w+\s*\(([^)]*)\)", value, re.I)
        p = re.search(r"\bp\s*=\s*(reject|quarantine|none)\b", m.group(1), re.I) if m else None
        policy = p.group(1).lower() if p else ""
    return AuthResults(ours, found["spf"], found["dkim"], found["dmarc"], found["arc"], policy.lower(),
                       header_from, spf_domain, tuple(dkim_pass))
