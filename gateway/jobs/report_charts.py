"""The report's figures per week, and the same charts as PNG images for the weekly mail.

`weekly_series(app, session, build, weeks)` is what the desk's report page draws (inline
SVG) and what `png_charts()` draws with Pillow for the weekly report mail, so a
manager sees the same charts in the browser and in the mail. `CHARTS` names each
chart once: its file, its series (times as median and 90th percentile, since a
median alone hides the tickets that waited longest), and its caption and series
labels in English and Chinese. The desk page shows the caption in the page's
language (figure caption and the SVG's accessible title); each PNG carries both
languages drawn above the plot and in its Title/Description text chunks, and the
weekly mail lists every image with its caption in the mail's language.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from gateway.jobs.report_split import _overall

LANGUAGES = ("en", "zh-CN")


@dataclass(frozen=True)
class Chart:
    name: str  # the image's file name in the weekly mail
    fields: tuple[str, ...]  # the weekly_series fields, one bar each per week
    top: float | None  # fixed top of the scale (None: the biggest value)
    caption: dict  # language -> caption
    labels: dict  # language -> one label per field (the legend)
    colours: tuple[str, ...]


CHARTS = (
    Chart("volume-per-week.png", ("opened",), None,
          {"en": "Tickets opened per week", "zh-CN": "每周新建工单数"},
          {"en": ("opened",), "zh-CN": ("新建",)}, ("#4a7bd0",)),
    Chart("sla-first-response-percent-per-week.png", ("sla_first",), 100,
          {"en": "First-response SLA compliance per week (% of tickets met on time)",
           "zh-CN": "每周首次响应 SLA 达成率（按时完成的工单占比，%）"},
          {"en": ("first response",), "zh-CN": ("首次响应",)}, ("#3a9a5b",)),
    Chart("sla-resolution-percent-per-week.png", ("sla_resolution",), 100,
          {"en": "Resolution SLA compliance per week (% of tickets met on time)",
           "zh-CN": "每周解决 SLA 达成率（按时完成的工单占比，%）"},
          {"en": ("resolution",), "zh-CN": ("解决",)}, ("#2d6e43",)),
    Chart("first-response-hours-per-week.png", ("first_hours", "first_p90_hours"), None,
          {"en": "First-response time per week (hours): median and 90th percentile",
           "zh-CN": "每周首次响应时间（小时）：中位数与第 90 百分位"},
          {"en": ("median", "p90"), "zh-CN": ("中位数", "P90")}, ("#c07a2c", "#7a4a12")),
    Chart("resolution-hours-per-week.png", ("resolution_hours", "resolution_p90_hours"), None,
          {"en": "Resolution time per week (hours): median and 90th percentile",
           "zh-CN": "每周解决时间（小时）：中位数与第 90 百分位"},
          {"en": ("median", "p90"), "zh-CN": ("中位数", "P90")}, ("#a0522d", "#5e2f19")),
    Chart("satisfaction-per-week.png", ("satisfaction",), 5,
          {"en": "Average satisfaction per week (1–5)", "zh-CN": "每周平均满意度（1–5 分）"},
          {"en": ("average",), "zh-CN": ("平均",)}, ("#8a4fc0",)),
)

# A font with Chinese glyphs for the captions drawn into the images (Debian's fonts-noto-cjk);
# without one the images carry the English caption only (their text chunks keep both).
CJK_FONTS = ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
             "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc")


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
                     "first_p90_hours": _hours(r["first_response"]["p90_seconds"]),
                     "resolution_hours": _hours(r["resolution"]["median_seconds"]),
                     "resolution_p90_hours": _hours(r["resolution"]["p90_seconds"]),
                     "satisfaction": r["satisfaction"]["average"]})
    return rows


def captions(language: str) -> list[dict]:
    """Each chart's file name and caption in `language`, for the weekly mail's list of images."""
    lang = language if language in LANGUAGES else "en"
    return [{"name": c.name, "caption": c.caption[lang]} for c in CHARTS]


def _font(size: int):
    from PIL import ImageFont

    for path in CJK_FONTS:
        if Path(path).exists():
            return ImageFont.truetype(path, size), True
    return ImageFont.load_default(), False


HEADER = 44  # the two caption lines above the plot
LEGEND = 20  # the series' colours under it


def png_bars(rows: list[dict], chart: Chart) -> bytes:
    from PIL import Image, ImageDraw
    from PIL.PngImagePlugin import PngInfo

    width, bar, gap = 40 + 60 * len(rows), 40, 20
    height = 180 + HEADER + LEGEND
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    font, cjk = _font(12)
    d.text((8, 6), chart.caption["en"], fill="black", font=font)
    if cjk:
        d.text((8, 24), chart.caption["zh-CN"], fill="black", font=font)
    base = HEADER + 150
    values = [r[f] for r in rows for f in chart.fields]
    peak = chart.top or max([v for v in values if v is not None] or [1]) or 1
    d.line((15, base, width - 10, base), fill="#888")
    each = bar // len(chart.fields)
    for i, r in enumerate(rows):
        x0 = 20 + i * (bar + gap)
        for k, (field, colour) in enumerate(zip(chart.fields, chart.colours)):
            v = r[field]
            x = x0 + k * each
            h = int((v or 0) / peak * 120)
            if h:
                d.rectangle((x, base - h, x + each, base), fill=colour)
            d.text((x + 2, base - 14 - h), "-" if v is None else f"{v:g}", fill="black")
        d.text((x0, base + 8), r["week"][5:], fill="#444")
    x = 20  # the legend, under the weeks
    for label, colour in zip(chart.labels["en"], chart.colours):
        d.rectangle((x, height - 14, x + 10, height - 4), fill=colour)
        d.text((x + 14, height - 17), label, fill="black", font=font)
        x += 110
    info = PngInfo()
    info.add_itxt("Title", chart.caption["en"], lang="en")
    info.add_itxt("Description", chart.caption["zh-CN"], lang="zh-CN")
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True, pnginfo=info)
    return out.getvalue()


def png_charts(app, s, build, weeks: int = 8, end_day=None) -> list[tuple[str, str, bytes]]:
    """(file name, content type, bytes) of every chart, ready for outbox.queue(attachments=)."""
    rows = weekly_series(app, s, build, weeks, end_day)
    return [(c.name, "image/png", png_bars(rows, c)) for c in CHARTS]
