"""Memory for one large message: received over SMTP and processed into a ticket, against
mail-parser parsing the same bytes whole, measured in the same run (Python heap, tracemalloc).

    python bench/large.py [MEGABYTES]

The gateway streams DATA into the spool blob store and processes a file-backed message
from a skeleton (parsers/skeleton.py), so its peaks should not grow with the message.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import time
import tracemalloc
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import mailparser  # noqa: E402

from bench import bench_config  # noqa: E402
from bench.smtp import free_port  # noqa: E402
from gateway.app import build_app  # noqa: E402
from gateway.pipeline.process import process_pending  # noqa: E402
from gateway.edges.smtp import start_listener  # noqa: E402
from gateway.runtime.workers import SpoolWriter  # noqa: E402

MB = 1024 * 1024
SENDER = textwrap.dedent("""
    import smtplib, sys
    raw = open(sys.argv[2], "rb").read()
    with smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=600) as s:
        s.sendmail("big@customer.example.com", ["support@support.example.test"], raw)
""")


def message(megabytes: int) -> bytes:
    m = EmailMessage()
    m["From"] = "Big Customer <big@customer.example.com>"
    m["To"] = "support@support.example.test"
    m["Subject"] = "core dump attached"
    m.set_content("Our server crashed; the core dump is attached.\n")
    m.add_attachment(os.urandom(megabytes * MB * 3 // 4), maintype="application", subtype="octet-stream",
                     filename="core.bin")
    return m.as_bytes().replace(b"\n", b"\r\n")


def peak(fn) -> tuple[float, float]:
    tracemalloc.start()
    t = time.perf_counter()
    fn()
    dt = time.perf_counter() - t
    p = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return p / MB, dt


def main() -> None:
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    raw = message(size)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d, "big.eml")
        path.write_bytes(raw)
        base, base_t = peak(lambda: mailparser.parse_from_bytes(path.read_bytes()))
        cfg = bench_config(f"{d}/var", base_dir=d, smtp={"max_message_size": (size + 20) * MB})
        app = build_app(cfg)
        writer = SpoolWriter(app)
        writer.start()
        port = free_port()
        ctl = start_listener(app, writer, port=port)
        try:
            recv, recv_t = peak(lambda: subprocess.run([sys.executable, "-c", SENDER, str(port), str(path)],
                                                       check=True))
        finally:
            ctl.stop()
            writer.stop()
            writer.join(10)
        proc, proc_t = peak(lambda: process_pending(app))
        app.db.dispose()
    print(f"message: {len(raw) / MB:.1f} MB")
    print(f"mail-parser parse of the whole message : peak {base:8.1f} MB  ({base_t:.1f} s)")
    print(f"supportgw SMTP receive and spool       : peak {recv:8.1f} MB  ({recv_t:.1f} s)")
    print(f"supportgw processing into a ticket     : peak {proc:8.1f} MB  ({proc_t:.1f} s)")
    print(f"ratio of peaks (receive, process)/parse: {recv / base:.3f}, {proc / base:.3f}")


if __name__ == "__main__":
    main()
