"""Sender authentication when we listen on SMTP ourselves: SPF, DKIM, ARC and DMARC.

With no MTA in front, nobody wrote an Authentication-Results header for us, so the
gateway checks the mail itself with maintained libraries: `authheaders` (DMARC
alignment and the RFC 8601 header), which drives `dkimpy` (DKIM, ARC) and `pyspf`
(SPF for the envelope sender and client IP), all resolving through `dnspython`.
Chosen because they are the libraries dkimpy-milter and authentication_milter-style
deployments use, they write the same header an MTA would, and they take a DNS
function, so [spam] resolver can point them at any nameserver.

`verify(app, entry, raw) -> str | None`: the header value ("<authserv-id>; spf=...;
dkim=...; dmarc=...") for a mail our SMTP listener received, when [spam] verify_smtp
is on; None otherwise. parsers/authresults.py reads it like an MTA's. A DNS failure
is a temperror in the header, never a lost or held mail.
"""

from __future__ import annotations

import logging

log = logging.getLogger("supportgw.auth")


def resolver(app):
    """A dnspython resolver: the system's, or the one [spam] resolver names ("host" or "host:port")."""
    import dns.resolver

    spec = app.config.spam.resolver
    if not spec:
        return dns.resolver.get_default_resolver()
    host, _, port = spec.rpartition(":") if spec.count(":") == 1 else (spec, "", "")
    r = dns.resolver.Resolver(configure=False)
    r.nameservers = [host]
    r.port = int(port or 53)
    r.lifetime = app.config.spam.timeout
    return r


def _use_resolver(r) -> None:
    # pyspf takes no DNS function: it asks dnspython's default resolver, so that is set to ours
    import dns.resolver

    dns.resolver.default_resolver = r


def _dnsfunc(r):
    """The one lookup authheaders hands to both dkimpy and its DMARC code: name -> the TXT record.
    dkimpy wants bytes, authheaders' DMARC lookup (names under _dmarc.) wants text."""
    import dns.exception
    import dns.resolver

    def lookup(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        value = b""
        try:
            for rdata in r.resolve(name.rstrip("."), "TXT"):
                value = b"".join(rdata.strings)
                break
        except dns.exception.DNSException:  # NXDOMAIN, no answer, timeout: no record
            pass
        return value.decode("utf-8", "replace") if name.startswith("_dmarc.") else value

    return lookup


def verify(app, entry, raw: bytes) -> str | None:
    cfg = app.config.spam
    if not cfg.verify_smtp or entry.source != "smtp" or not entry.client_ip:
        return None
    import authheaders

    r = resolver(app)
    _use_resolver(r)
    authserv_id = cfg.authserv_id or app.config.gateway.domain
    try:
        header = authheaders.authenticate_message(
            raw, authserv_id, spf=True, dkim=True, arc=True, dmarc=True, ip=entry.client_ip,
            mail_from=entry.envelope_from or "", helo=entry.helo or "", dnsfunc=_dnsfunc(r))
    except Exception as exc:  # a library failing on odd mail proves nothing: no results, mail goes on
        log.warning("spool %s: sender authentication failed to run: %s", entry.id, exc)
        return None
    value = header.split(":", 1)[1].strip() if header.lower().startswith("authentication-results:") else header
    return value
