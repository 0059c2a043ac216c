"""Pipeline handler stub: being implemented."""


def handle(ib):
    return None
