"""What happens to every inbound mail between its edge and a handler: `Source` and `spool()`,
processing of spooled rows (gateway/pipeline/process.py), the parse-ahead pool.
"""
