"""Telling the administrators at once when an OAuth account stops working by itself.

A refresh the provider refuses (consent revoked, the refresh token expired after
90 days unused, the client secret expired) will not cure itself: mail stays on
the server, undrained, until someone signs in again. So the first such failure
queues one mail (`oauth_failed`) to `gateway.admins` (else `report.recipients`),
and the token store remembers it was sent (`alerted_at`) so that neither this
gateway's retries nor the other gateways on the same data_dir send it again; a
successful refresh clears the mark (gateway/oauth/tokens.py), so the next failure is told
again. A failure that may pass (the token endpoint unreachable) is only logged.
"""

from __future__ import annotations

import logging
import time

from gateway import outbox
from gateway.oauth.store import TokenStore

log = logging.getLogger("supportgw.oauth")


def alert(app, account: str, message: str, *, permanent: bool) -> bool:
    """Queue the administrators' alert for this failure, once; True when queued now."""
    if not permanent:
        return False
    store = TokenStore(app.config.data_dir / "oauth")
    to = list(app.config.admins)
    with store.locked(account):
        rec = store.load(account)
        if rec.get("alerted_at") or not rec.get("failed_since"):
            return False  # told already, or signed in / refreshed since this failure was seen
        if not to:
            log.error("%s; nobody to tell: set gateway.admins (or report.recipients)", message)
            return False
        since = rec.get("failed_since") or time.time()
        rendered = app.templates.render(
            "oauth_failed", app.config.report.language, account=account, problem=message,
            since=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(since)),
            what="the outbound relay" if account == "outbound" else f"mailbox {account}",
            team_name=app.config.gateway.display_name)
        with app.db.write_lock(), app.db.session() as s:
            outbox.alert_managers(app, s, "oauth_failed", rendered, to=to)
        store.update(account, alerted_at=time.time())
    log.error("%s; the administrators (%s) were told by mail", message, ", ".join(to))
    return True
