"""An in-memory sink for parsers.skeleton.split in tests: keeps the bytes it is given."""

import hashlib


class HashingSink:
    """Keeps the bytes it is given; `finish` names them as a stored part would be named."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, chunk: bytes) -> None:
        self.data += chunk

    def finish(self) -> tuple[str, int]:
        return hashlib.sha256(self.data).hexdigest(), len(self.data)
