"""Where mail and people reach the gateway: the SMTP listener and its DATA reader, the IMAP
poller (connection, batches, state), history import and catch-up, and the web endpoints.
"""
