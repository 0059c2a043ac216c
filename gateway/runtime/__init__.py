"""A running gateway's processes: the runner, background workers, the outbox dispatcher and
the transports it sends through.
"""
