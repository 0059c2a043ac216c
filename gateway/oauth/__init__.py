"""OAuth 2.0 for IMAP mailboxes and the outbound relay: tokens, their store, sign-in, alerts.
"""
