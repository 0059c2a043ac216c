"""`supportgw oauth login NAME` and `supportgw oauth status`: OAuth 2.0 sign-in and token state.

`login` signs an `[[imap]]` mailbox (by its name) or `outbound` in, by the device
flow (a URL and a code for any other device) or a browser (gateway/oauth/login.py),
and stores the refresh token in `data_dir/oauth/` (mode 0600). `status` says, per OAuth account, whether a token is held, until when,
and whether the last refresh failed. Neither prints a token. Needs no database.
"""

from __future__ import annotations

import time

from gateway.oauth import tokens as oauth, login as oauth_login
from gateway.cli import CommandError
from gateway.config import find_config_path, load_config


def register(sub) -> None:
    p = sub.add_parser("oauth", help="OAuth 2.0 sign-in for IMAP mailboxes and the outbound relay")
    osub = p.add_subparsers(dest="oauth_command", required=True)
    q = osub.add_parser("login", help="sign in (device code or browser) and store the refresh token")
    q.add_argument("name", help="an [[imap]] mailbox's name, or 'outbound'")
    q.set_defaults(func=cmd_login)
    q = osub.add_parser("status", help="the token state of every OAuth account")
    q.set_defaults(func=cmd_status)


def _when(t) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(t))) if t else "never"


def token_lines(source: oauth.TokenSource) -> list[str]:
    """What the store says about this account (no token), for `oauth status` and `imap check`."""
    s, rec = source.settings, source.status()
    lines = [(f"      auth: OAuth 2.0, provider {s.provider}, flow {s.flow}, {s.mechanism.upper()}, "
              f"as {source.username}")]
    if rec.get("failed_since") and rec.get("permanent"):  # a person must act (as health says)
        lines.append(f"      token: FAILING since {_when(rec['failed_since'])}: {rec.get('last_error', '')}"
                     + ("; administrators told" if rec.get("alerted_at") else ""))
    elif rec.get("failed_since"):  # may pass (the endpoint unreachable): retried, a warning in health
        lines.append(f"      token: refresh failing for now, since {_when(rec['failed_since'])}, retried: "
                     f"{rec.get('last_error', '')}" + ("; administrators told" if rec.get("alerted_at") else ""))
    if s.flow != "client_credentials" and not rec.get("refresh_token"):
        lines.append(f"      token: none yet; run 'supportgw oauth login {source.account}'")
    elif rec.get("expires_at"):
        lines.append(f"      token: refreshed {_when(rec.get('refreshed_at'))}, access token valid until "
                     f"{_when(rec['expires_at'])}, renewed {s.refresh_margin:g}s before")
    return lines


def cmd_login(args) -> int:
    cfg = load_config(find_config_path(args.config))
    source = oauth.source_for(cfg, args.name)
    try:
        rec = oauth_login.login(source, say=lambda text: print(text, flush=True))
    except oauth.OAuthFailure as exc:
        raise CommandError(str(exc)) from None
    print(f"signed in: {args.name} ({source.username}); refresh token stored in "
          f"{source.store.path(args.name)} (mode 0600); access token valid until {_when(rec['expires_at'])}")
    print("check it: supportgw imap check" + (f" --mailbox {args.name}" if args.name != "outbound" else ""))
    return 0


def cmd_status(args) -> int:
    cfg = load_config(find_config_path(args.config))
    names = oauth.oauth_accounts(cfg)
    if not names:
        raise CommandError("no mailbox and no outbound relay uses auth = 'oauth2'")
    failing = 0
    states = oauth.health(cfg)["accounts"]  # the verdict /readyz and `supportgw health` give
    for name in names:
        source = oauth.source_for(cfg, name)
        state = states.get(name, "ok")
        bad = state in ("failing", "not signed in")
        failing += bad
        print(("FAIL  " if bad else "WARN  " if state == "retrying" else "ok    ") + name)
        print("\n".join(token_lines(source)), flush=True)
    if failing:
        raise CommandError(f"{failing} of {len(names)} OAuth account(s) need attention")
    return 0
