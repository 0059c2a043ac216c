"""A small TNEF (winmail.dat) writer for tests, following [MS-OXTNEF] 2.1.3.

The corpora hold no winmail.dat, so tests build one the way Outlook lays it out: the
signature and key, the version and OEM codepage, the message body, then per attachment
attAttachRendData (which opens it), attAttachTitle and attAttachData. Every attribute is
level, id, type, length, data and a 16-bit checksum of the data.
"""

from __future__ import annotations

import struct

SIGNATURE = 0x223E9F78
MESSAGE, ATTACHMENT = 0x01, 0x02


def _attribute(level: int, name: int, kind: int, data: bytes) -> bytes:
    return (struct.pack("<BHHI", level, name, kind, len(data)) + data
            + struct.pack("<H", sum(data) & 0xFFFF))


def winmail(body: str = "", files: list[tuple[str, bytes]] = (), codepage: int = 1252) -> bytes:
    out = struct.pack("<IH", SIGNATURE, 0x1234)
    out += _attribute(MESSAGE, 0x9006, 0x0008, struct.pack("<I", 0x00010000))  # attTnefVersion
    out += _attribute(MESSAGE, 0x9007, 0x0006, struct.pack("<II", codepage, 0))  # attOemCodepage
    out += _attribute(MESSAGE, 0x8008, 0x0007, b"IPM.Microsoft Mail.Note\x00")  # attMessageClass
    if body:
        out += _attribute(MESSAGE, 0x800C, 0x0002, body.encode(f"cp{codepage}") + b"\x00")  # attBody
    for name, data in files:
        out += _attribute(ATTACHMENT, 0x9002, 0x0006, struct.pack("<HIIHHI", 1, 0xFFFFFFFF, 0, 0, 0, 0))
        out += _attribute(ATTACHMENT, 0x8010, 0x0001, name.encode("ascii") + b"\x00")  # attAttachTitle
        out += _attribute(ATTACHMENT, 0x800F, 0x0006, data)  # attAttachData
    return out
