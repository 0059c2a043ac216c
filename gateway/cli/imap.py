"""`supportgw imap check`: try each configured mailbox the way the poller will.

Connects, logs in, selects the folder, and reports message counts, IDLE and MOVE
support and what happens to processed mail. Exits non-zero with the problem and
what to change when any mailbox fails. Needs no database.
"""

from __future__ import annotations

from gateway.oauth import tokens as oauth
from gateway.cli import CommandError
from gateway.cli.importing import register_backfill
from gateway.cli.oauth import token_lines
from gateway.config import find_config_path, load_config
from gateway.edges.imap_conn import NETWORK_ERRORS, SERVER_ERRORS, ImapProblem, close, connect, select, where


def register(sub) -> None:
    p = sub.add_parser("imap", help="IMAP mailboxes the gateway drains")
    isub = p.add_subparsers(dest="imap_command", required=True)
    q = isub.add_parser("check", help="connect, log in and select each [[imap]] mailbox; report what works")
    q.add_argument("--mailbox", help="check only this mailbox (its 'name')")
    q.set_defaults(func=cmd_check)
    register_backfill(isub)  # imap backfill: gateway/cli/importing.py


def check_mailbox(mb, tokens=None) -> list[str]:
    """Lines describing a working mailbox; raises ImapProblem when it does not work.
    `tokens`: its gateway.oauth.tokens.TokenSource with auth = 'oauth2'."""
    client = None
    try:
        client = connect(mb, tokens)
        caps = set(client.capabilities())
        sel = select(client, mb)
        lines = [f"ok    {where(mb)}",
                 f"      folder {mb.folder!r}: {sel.get(b'EXISTS', 0)} message(s), "
                 f"UIDVALIDITY {sel.get(b'UIDVALIDITY', '?')}, UIDNEXT {sel.get(b'UIDNEXT', '?')}",
                 f"      unseen: {len(client.search(['UNSEEN']))}"]
        if b"IDLE" in caps and mb.idle:
            lines.append("      IDLE: supported, new mail is picked up at once")
        elif b"IDLE" in caps:
            lines.append(f"      IDLE: supported but disabled (idle = false); polling every {mb.poll_interval:g}s")
        else:
            lines.append(f"      IDLE: not supported by the server; polling every {mb.poll_interval:g}s")
        if mb.after == "move":
            exists = client.folder_exists(mb.move_to)
            how = "MOVE" if b"MOVE" in caps else "COPY + EXPUNGE (server has no MOVE)"
            lines.append(f"      after: move to {mb.move_to!r} via {how}"
                         + ("" if exists else " (folder will be created)"))
        elif mb.after == "delete":
            lines.append("      after: delete from the server once stored")
        else:
            lines.append("      after: mark \\Seen once stored")
        return lines + (token_lines(tokens) if tokens is not None else [])
    except ImapProblem:
        raise
    except NETWORK_ERRORS as exc:
        raise ImapProblem("network", f"{where(mb)}: connection lost: {exc}") from None
    except SERVER_ERRORS as exc:
        raise ImapProblem("server", f"{where(mb)}: server error: {exc}") from None
    finally:
        close(client)


def cmd_check(args) -> int:
    cfg = load_config(find_config_path(args.config))
    boxes = [mb for mb in cfg.imap if not args.mailbox or mb.name == args.mailbox]
    if not cfg.imap:
        raise CommandError("no [[imap]] mailbox is configured; add one to the config (see README)")
    if not boxes:
        raise CommandError(f"no [[imap]] mailbox named {args.mailbox!r}; configured: "
                           + ", ".join(mb.name for mb in cfg.imap))
    failed = []
    for mb in boxes:
        tokens = oauth.source_for(cfg, mb.name) if mb.auth == "oauth2" else None
        try:
            print("\n".join(check_mailbox(mb, tokens)), flush=True)
        except ImapProblem as exc:
            print(f"FAIL  {exc}", flush=True)
            if tokens is not None:
                print("\n".join(token_lines(tokens)), flush=True)
            failed.append(mb.name)
    if cfg.outbound.auth == "oauth2" and cfg.outbound.smtp_host and not args.mailbox:
        # the relay's token lives beside the mailboxes'; a failing one stops our answers
        tokens = oauth.source_for(cfg, "outbound")
        try:
            tokens.token()
            print("ok    outbound relay token (" + f"{cfg.outbound.username} at {cfg.outbound.smtp_host})", flush=True)
        except oauth.OAuthFailure as exc:
            print(f"FAIL  {exc}", flush=True)
            failed.append("outbound")
        print("\n".join(token_lines(tokens)), flush=True)
    if failed:
        raise CommandError(f"{len(failed)} of {len(boxes)} mailbox(es) failed the check: {', '.join(failed)}")
    return 0
