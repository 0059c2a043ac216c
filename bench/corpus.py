"""Deterministic realistic support mail for benchmarks: plain, HTML, attachments,
UTF-8/GB2312/GBK/Big5 Chinese, and ~30% replies threaded by In-Reply-To."""

from __future__ import annotations

import random
from email.header import Header
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime, formataddr

EN_SUBJECTS = ["Cannot log in to the portal", "Database outage on production", "Invoice question for March",
               "API returns 500 errors", "Urgent: all users affected by timeout", "How do I reset my password?",
               "Backup job failed overnight", "Feature request: export to CSV", "VPN disconnects every hour",
               "License renewal"]
ZH_SUBJECTS = ["系统宕机，全部用户无法登录", "发票开具问题", "数据库连接超时", "紧急：生产环境报错", "如何重置密码",
               "备份任务失败", "接口返回500错误", "许可证续期咨询"]
EN_BODY = ("Hello support,\n\nSince this morning {what}. We tried restarting the service but the problem "
           "remains. Our users in the {dept} department are affected.\n\nCould you please look into it?\n\n"
           "Best regards,\n{name}\n")
ZH_BODY = "您好：\n\n从今天上午开始，{what}。我们已经重启了服务，但问题依旧。{dept}部门的用户都受到了影响。\n\n请尽快协助处理，谢谢！\n\n{name}\n"
WHATS_EN = ["the login page times out", "reports are empty", "the nightly export crashes", "emails are delayed"]
WHATS_ZH = ["登录页面一直超时", "报表显示为空", "夜间导出任务崩溃", "邮件发送延迟"]
DEPTS = ["finance", "sales", "engineering", "operations"]
ORGS = ["bigbank.example", "acme.example.com", "shop.example.net", "uni.example.edu", "hospital.example.org"]


def generate(n: int, seed: int = 7) -> list[bytes]:
    rnd = random.Random(seed)
    today = datetime.now(timezone(timedelta(hours=8))).replace(second=0, microsecond=0)
    out: list[bytes] = []
    sent: list[tuple[str, str, str]] = []  # (message-id, sender, subject)
    for i in range(n):
        if sent and rnd.random() < 0.3:
            parent_id, sender, subj = rnd.choice(sent)
            subject = subj if subj.lower().startswith("re:") else f"Re: {subj}"
            reply_to = parent_id
        else:
            org = rnd.choice(ORGS)
            sender = f"user{rnd.randrange(500)}@{org}"
            zh = rnd.random() < 0.35
            subject = rnd.choice(ZH_SUBJECTS if zh else EN_SUBJECTS)
            reply_to = None
        zh = any("\u4e00" <= ch <= "\u9fff" for ch in subject)
        name = f"客户{i}" if zh else f"Customer {i}"
        body = (ZH_BODY if zh else EN_BODY).format(what=rnd.choice(WHATS_ZH if zh else WHATS_EN),
                                                     dept=rnd.choice(DEPTS), name=name)
        if reply_to:
            body = ("补充一下：问题仍然存在。\n\n" if zh else "Any update? It still happens.\n\n") + "> " + body.replace("\n", "\n> ")
        charset = rnd.choice(["gb2312", "gbk", "utf-8", "big5"]) if zh else rnd.choice(["utf-8", "iso-8859-1"])
        if charset == "big5":
            subject_enc, body_enc = "utf-8", "utf-8"  # Big5 can't hold simplified text; keep it honest
        else:
            subject_enc = body_enc = charset
        kind = rnd.random()
        try:
            text_part = MIMEText(body, "plain", body_enc)
        except UnicodeEncodeError:
            text_part = MIMEText(body, "plain", "utf-8")
        if kind < 0.55:
            msg = text_part
        elif kind < 0.85:
            msg = MIMEMultipart("alternative")
            msg.attach(text_part)
            html = "<html><body>" + "".join(f"<p>{line}</p>" for line in body.splitlines() if line) + \
                   '<img src="https://tracker.example/p.gif"></body></html>'
            msg.attach(MIMEText(html, "html", "utf-8"))
        else:
            msg = MIMEMultipart("mixed")
            msg.attach(text_part)
            att = MIMEApplication(bytes(rnd.randrange(256) for _ in range(rnd.randrange(2000, 40000))),
                                  Name=f"log-{i}.txt")
            att["Content-Disposition"] = f'attachment; filename="log-{i}.txt"'
            msg.attach(att)
        try:
            msg["Subject"] = Header(subject, subject_enc).encode()
        except UnicodeEncodeError:
            msg["Subject"] = Header(subject, "utf-8").encode()
        msg["From"] = formataddr((str(Header(name, "utf-8")), sender))
        msg["To"] = "support@support.example.test"
        mid = f"<bench-{seed}-{i}@{sender.split('@')[1]}>"
        msg["Message-ID"] = mid
        # today's date, minutes apart: mail older than workflow.history_age_days is filed as history
        # (gateway/handlers/history.py), and the benchmarks measure the live path
        msg["Date"] = format_datetime(today - timedelta(minutes=n - i))
        if reply_to:
            msg["In-Reply-To"] = reply_to
            msg["References"] = reply_to
        out.append(msg.as_bytes())
        sent.append((mid, sender, subject))
    return out
