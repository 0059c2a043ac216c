"""The scheduler and its periodic jobs: SLA watch, pending reminders, reports, retention,
care of the suspended area.
"""
