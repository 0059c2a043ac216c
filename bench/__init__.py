"""Runnable benchmarks; each prints its figures. See each script's docstring."""

from __future__ import annotations

from pathlib import Path

SECRET = "bench-secret-key-0123456789"


def bench_config(data_dir, *, base_dir=None, **sections):
    """The gateway's configuration for a benchmark: data under `data_dir`, a fixed signing
    secret, and any other sections given (``smtp={...}``, ``imap=[...]``)."""
    from gateway.config import parse_config

    return parse_config({"gateway": {"data_dir": str(data_dir), "secret_key": SECRET}, **sections},
                        base_dir=Path(base_dir if base_dir is not None else data_dir))
