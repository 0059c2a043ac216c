"""SMTP listener throughput: 8 concurrent clients deliver N messages to a running
gateway (every message durably spooled before its 250), beside a bare aiosmtpd
sink that answers 250 without storing, measured in the same run.

    python bench/smtp.py [N] [--clients 8]

Both servers run as separate processes so the clients do not share their GIL.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import supportgw_command  # noqa: E402
from bench.corpus import generate  # noqa: E402

PY = sys.executable
SINK = textwrap.dedent("""
    import sys, time, asyncio
    from aiosmtpd.controller import Controller
    class Sink:
        async def handle_DATA(self, server, session, envelope):
            return "250 OK"
    c = Controller(Sink(), hostname="127.0.0.1", port=int(sys.argv[1]), data_size_limit=50*1024*1024)
    c.start()
    print("ready", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        c.stop()
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.recv(100)
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port}")


def deliver(port: int, msgs: list[bytes], clients: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    lock = threading.Lock()
    chunks = [msgs[i::clients] for i in range(clients)]

    def worker(chunk):
        lat = []
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
            s.ehlo()
            for raw in chunk:
                s.mail("customer@bench.example")
                code, msg = s.rcpt("support@support.example.test")
                if code != 250:
                    raise RuntimeError(f"RCPT answered {code} {msg!r}")
                t = time.perf_counter()
                code, _ = s.data(raw)
                lat.append(time.perf_counter() - t)
                if code != 250:
                    raise RuntimeError(f"server answered {code}")
        with lock:
            latencies.extend(lat)

    threads = [threading.Thread(target=worker, args=(c,)) for c in chunks]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(msgs) / (time.perf_counter() - t0), latencies


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] * 1000


def run_sink(msgs, clients):
    port = free_port()
    proc = subprocess.Popen([PY, "-c", SINK, str(port)], stdout=subprocess.DEVNULL)
    try:
        wait_port(port)
        return deliver(port, msgs, clients)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


def run_gateway(msgs, clients, db_url: str | None = None):
    with tempfile.TemporaryDirectory() as d:
        port = free_port()
        cfg = Path(d, "supportgw.toml")
        (Path(d) / "secret.key").write_text("bench-secret-key-0123456789abcdef\n")
        os.chmod(Path(d) / "secret.key", 0o600)
        cfg.write_text(textwrap.dedent(f"""
            [gateway]
            data_dir = "{d}/var"
            secret_key = {{ file = "{d}/secret.key" }}
            [database]
            url = "{db_url or ''}"
            [smtp]
            port = {port}
            max_connections_per_ip = 100
            max_messages_per_ip_per_minute = 0
        """))
        command, env = supportgw_command()
        proc = subprocess.Popen([*command, "--config", str(cfg), "run"],
                                stdout=subprocess.DEVNULL, stderr=open(Path(d, "gw.log"), "w"), env=env)
        try:
            try:
                wait_port(port, 60)
            except RuntimeError:
                print(Path(d, "gw.log").read_text()[-3000:], file=sys.stderr)
                raise
            return deliver(port, msgs, clients)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=8)
    args = ap.parse_args()
    # SMTP carries CRLF lines; the generator writes LF
    msgs = [re.sub(rb"\r?\n", b"\r\n", m) for m in generate(args.n)]
    sink_rates, gw_rates, sink_lat, gw_lat = [], [], [], []
    for _ in range(2):  # alternate so machine noise hits both alike
        r, lat = run_sink(msgs, args.clients)
        sink_rates.append(r)
        sink_lat += lat
        r, lat = run_gateway(msgs, args.clients)
        gw_rates.append(r)
        gw_lat += lat
    s, g = statistics.median(sink_rates), statistics.median(gw_rates)
    print(f"{args.n} messages, {args.clients} concurrent clients")
    print(f"bare aiosmtpd sink : {s:8.1f} msgs/s  p50 {pct(sink_lat, 50):6.2f} ms  p99 {pct(sink_lat, 99):6.2f} ms")
    print(f"supportgw (spooled): {g:8.1f} msgs/s  p50 {pct(gw_lat, 50):6.2f} ms  p99 {pct(gw_lat, 99):6.2f} ms")
    print(f"ratio gateway/sink : {g / s:8.2f}   (target >= 0.50)")


if __name__ == "__main__":
    main()
