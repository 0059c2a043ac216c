"""The report's figures per week, and the same charts as PNG images for the weekly mail.

`weekly_series(app, session, build, weeks)` is what the desk's report page draws (inline
SVG) and what `png_charts()` draws with Pillow for the weekly report mail, so a
manager sees the same charts in the browser and in the mail. Chart captions are
the mail's business (its template, both languages); the images carry only
numbers and dates, so one image serves every language.
"""

from __future__ import annotations

import io
from datetime import timedelta
from zoneinfo import ZoneInfo

from gateway.jobs.report_split import _overall

CHARTS = (  # file name, series field, fixed top (None: the biggest value)
    ("volume-per-week.png", "opened", None),
    ("sla-first-response-percent-per-week.png", "sla_first", 100),
    ("sla-resolution-percent-per-week.png", "sla_resolution", 100),
    ("median-first-response-hours-per-week.png", "first_hours", None),
    ("median-resolution-hours-per-week.png", "resolution_hours", None),
    ("satisfaction-per-week.png", "satisfaction", 5),
)


def _pct(rate):
    return None if rate is None else round(rate * 100, 1)


def _hours(seconds):
    return None if seconds is None else round(seconds / 3600, 1)


def weekly_series(app, s, build, weeks: int = 8, end_day=None) -> list[dict]:
    """`build`: gateway.jobs.weekly_report.build, passed in so this module needs nothing of its caller."""
    end_day = end_day or app.now().astimezone(ZoneInfo(app.config.report.timezone)).date()
    rows = []
    for i in range(weeks, 0, -1):
        end = end_day - timedelta(days=7 * (i - 1))
        start = end - timedelta(days=6)
        r = build(app, s, start, end, by=())
        sla = _overall(r.get("sla", {}))
        rows.append({"week": start.isoformat(), "opened": r["tickets"]["opened"],
                     "sla_first": _pct(sla["first_response"]["compliance"]),
                     "sla_resolution": _pct(sla["resolution"]["compliance"]),
                     "first_hours": _hours(r["first_response"]["median_seconds"]),
                     "resolution_hours": _hours(r["resolution"]["median_seconds"]),
                     "satisfaction": r["satisfaction"]["average"]})
    return rows


def png_bars(rows: list[dict], field: str, top=None) -> bytes:
    from PIL import Image, ImageDraw

    width, height, bar, gap = 40 + 60 * len(rows), 180, 40, 20
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    values = [r[field] for r in rows]
    peak = top or max([v for v in values if v is not None] or [1]) or 1
    d.line((15, 150, width - 10, 150), fill="#888")
    for i, (r, v) in enumerate(zip(rows, values)):
        x = 20 + i * (bar + gap)
        h = int((v or 0) / peak * 120)
        if h:
            d.rectangle((x, 150 - h, x + bar, 150), fill="#4a7bd0")
        d.text((x + 4, 136 - h), "-" if v is None else f"{v:g}", fill="black")
        d.text((x, 158), r["week"][5:], fill="#444")
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()


def png_charts(app, s, build, weeks: int = 8, end_day=None) -> list[tuple[str, str, bytes]]:
    """(file name, content type, bytes) of every chart, ready for outbox.queue(attachments=)."""
    rows = weekly_series(app, s, build, weeks, end_day)
    return [(name, "image/png", png_bars(rows, field, top)) for name, field, top in CHARTS]
