"""The inbound handlers, one module each, run in the order gateway/handlers/registry.py lists.
"""
