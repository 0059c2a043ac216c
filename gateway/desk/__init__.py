"""What happens to a ticket whoever asks: ticket operations, handover, closure, relay,
briefing, knowledge base, notifications, merge/split, hold, topics, send-later, threading.
"""
