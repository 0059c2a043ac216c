"""One conversation of an imported history as the rows it writes (gateway/edges/importer.py writes them).

Owns what a ticket made from a history looks like: the requester (the first person to
write who is not us), routing by the live rules on the first customer message, the mail's
own dates, closed when quiet for longer than the importer's `close_after` (else open, never
pending: gateway/jobs/pending.py would write to the customer about it), our messages as
outbound, the people in it as participants, and the events that say it was imported.

Must not: queue mail, set an SLA deadline, or touch the database (rows are plain dicts).
"""

from __future__ import annotations


def conversation_rows(imp, conv, found, parsed, raws, ticket_id, now) -> dict:
    """Everything one conversation writes, as rows without their ids."""
    app = imp.app
    todo = [k for k in conv.keys if not found[k].stored]
    emails = {k: parsed[k] for k in todo}
    dates = [found[k].date for k in conv.keys if found[k].date is not None]
    first = min(dates) if dates else now
    last = max(dates) if dates else now
    plan = {"ticket_id": ticket_id, "ticket": None, "messages": [], "thread_ids": [], "participants": [],
            "events": [], "last": min(last, now)}
    people: dict[tuple[str, str], str] = {}
    if ticket_id is None:
        inbound = [k for k in todo if not imp.ours(found[k].sender)]
        human = [k for k in inbound if not emails[k].automatic] or inbound
        root = emails[human[0]] if human else emails[todo[0]]
        if human:
            requester, rname = root.sender.email, root.sender.name
        else:  # we wrote first (an answer whose question is lost, or a mail to a customer)
            to = [a for a in root.to + root.cc if a.email and not imp.ours(a.email)]
            requester, rname = (to[0].email, to[0].name) if to else (root.sender.email, root.sender.name)
        decision = imp.routed(human[0] if human else todo[0], root, first)
        # the [[address]] the customer wrote to (or we wrote from), as a live ticket keeps it: its
        # later answers go out From that brand, in its language, and a brand's team takes it
        brand = app.config.brand_for([a.email for a in root.to + root.cc] if human else [root.sender.email])
        team = app.config.team_for(decision["team"], brand, app.rules.current.defaults.team)
        language = app.config.language_for(root.language, brand)
        closed = now - last > imp.close_after
        # open even when we spoke last: "pending" would let the pending-reminder job write to the
        # customer about a conversation the gateway never had (gateway/jobs/pending.py)
        status = "closed" if closed else "open"
        # the first answer by a person: the old helpdesk's own acknowledgements do not count
        responded = next((found[k].date for k in conv.keys if imp.ours(found[k].sender)
                          and found[k].date is not None and found[k].date >= first
                          and not (k in emails and emails[k].automatic)), None)
        plan["ticket"] = dict(
            subject=root.subject or "(no subject)", status=status, priority=decision["priority"],
            category=decision["category"], team=team, tier=1, owner=decision["owner"],
            handler=decision["owner"], requester_email=requester, requester_name=rname,
            organisation=decision["organisation"], project=decision["project"],
            customer_tier=decision["customer_tier"], language=language, tags=decision["tags"],
            address=brand.address if brand else "",
            created_at=min(first, now), updated_at=min(last, now), first_response_due=None, resolution_due=None,
            first_responded_at=responded, resolved_at=min(last, now) if closed else None,
            closed_at=min(last, now) if closed else None, paused_seconds=0, sla_policy=decision["sla_policy"],
            held=False, handover_reason="", escalated_from="", manager_escalated=False, solution="")
        people[(requester, "requester")] = rname
        for w in decision["watchers"]:
            people[(w, "watcher")] = ""
        ev = plan["events"]
        label = imp.sources[found[conv.keys[0]].src].label
        ev.append(_event(first, "created", f"ticket {{ref}} imported from {label}: opened by {requester}",
                              requester, source=f"import:{label}"))
        ev.append(_event(first, "routed", "\n".join(
            decision["fired"] + [f"category={decision['category']} team={team} "
                                 f"priority={decision['priority']} owner={decision['owner'] or '-'}"]),
            category=decision["category"], team=team, priority=decision["priority"],
            owner=decision["owner"], rules=decision["rules"]))
        ev.append(_event(now, "imported", "imported history: no acknowledgement, notification or SLA clock; "
                              f"{len(conv.keys)} messages from {first:%Y-%m-%d} to {last:%Y-%m-%d}",
                              messages=len(conv.keys), by_subject=len(conv.by_subject)))
        if closed:
            ev.append(_event(min(last, now), "closed", "closed on import: no message for more than "
                                  f"{imp.close_after.days} days", old="open", new="closed"))
    for k in todo:
        e, f = emails[k], found[k]
        ours = imp.ours(f.sender)
        when = min(f.date, now) if f.date is not None else first
        raw = raws[k]
        if f.size > app.config.gateway.spool_inline_max:  # as the live spool keeps large mail
            app.spool_blobs.put(f.sha, raw)
            raw = None
        spool = dict(source=f"import:{imp.sources[f.src].label}", received_at=now, size=f.size, sha256=f.sha,
                     message_id=e.message_id, dedupe_key=f.dedupe, envelope_from="", envelope_to=[],
                     raw=raw, status="imported", error="", attempts=1, processed_at=now)
        m = {"spool": spool, "attachments": []}
        m["row"] = dict(direction="out" if ours else "in",
                        kind=("automatic" if e.automatic else "engineer") if ours
                        else ("automatic" if e.automatic else "customer"),
                        message_id=e.message_id, sender_email=e.sender.email, sender_name=e.sender.name,
                        to=[a.email for a in e.to], cc=[a.email for a in e.cc], subject=e.subject, text=e.text,
                        reply_text=e.reply_text, html=e.html, automatic=e.automatic, internal=False,
                        created_at=when)
        for att in e.attachments:  # its file was written where it was parsed (importer._parse_many)
            m["attachments"].append(dict(filename=att.filename, content_type=att.content_type, size=att.size,
                                         sha256=att.sha256))
        plan["messages"].append(m)
        plan["thread_ids"].append(dict(message_id=e.message_id, outbound=ours))
        if not ours:
            # relaxed: anyone who wrote in the conversation, and whom the customers copied, was part
            # of it; on a ticket the database had, the importer leaves out who is on it already
            for a in (e.sender,) + e.to + e.cc:
                if a.email and not imp.ours(a.email) and (a.email, "requester") not in people:
                    people.setdefault((a.email, "cc"), a.name)
    plan["participants"] = [dict(email=em, name=nm, role=role, active=True) for (em, role), nm in people.items()]
    return plan

def routed(decision) -> dict:
    """What a ticket of the history keeps of a routing decision (routing.engine.Decision), as
    plain values: computed where the root message was parsed (gateway/edges/import_work.py),
    the cheapest to send back."""
    fired = [st for st in decision.trace if st.matched]
    return dict(priority=decision.priority, category=decision.category, team=decision.team,
                owner=decision.owner_email or "", organisation=decision.organisation or "",
                project=getattr(decision.project, "name", "") if decision.project else "",
                customer_tier=decision.customer_tier or "", tags=list(decision.tags),
                watchers=list(decision.watchers), sla_policy=decision.sla_policy or "",
                fired=[str(st) for st in fired], rules=[{"rule": st.rule, "changes": list(st.changes)} for st in fired])


def _event(at, kind, detail, actor="system", **data) -> dict:
    return dict(at=at, kind=kind, actor=actor, detail=detail, data=data)
