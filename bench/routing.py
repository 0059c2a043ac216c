"""Routing throughput: 200 rules x 10,000 parsed emails, and routing's share of ingest.

    python bench/routing.py [EMAILS] [RULES] [INGEST_MSGS]

Prints decisions/second and microseconds per decision (median of 3 rounds),
then, if bench/ingest.py is usable, the whole pipeline's time per message on
generated mail and routing's share of it (target: under 10%). Deterministic
(seeded); no network.
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # before bench/, so `routing` is the package, not this file

from parsers.model import Address, Attachment, ParsedEmail  # noqa: E402
from routing.engine import route  # noqa: E402
from routing.loader import SAMPLE_RULES, load_rules  # noqa: E402

EN = ("outage down slow error timeout login password invoice billing refund database deadlock query "
      "replication backup restore vpn firewall dns latency certificate expired upgrade license report "
      "export import crash memory disk cpu network printer email calendar sync mobile api token "
      "permission access denied payment order shipment inventory warehouse erp crm portal "
      "kubernetes docker container pod node cluster ingress gateway proxy nginx apache tomcat redis kafka "
      "elasticsearch mongodb oracle mysql postgresql sqlserver hadoop spark ldap sso oauth saml mfa otp "
      "smtp imap webhook callback cron scheduler batch etl pipeline dashboard grafana prometheus alert "
      "monitoring log audit compliance gdpr encryption tls ssl handshake cipher keystore truststore "
      "invoice quotation contract renewal subscription seat trial migration rollback patch hotfix "
      "release deployment build compile jenkins gitlab artifact repository branch merge conflict "
      "sap salesforce workday payroll attendance approval workflow form signature pdf excel csv").split()
EN_PHRASES = ["all users", "not responding", "packet loss", "slow query", "service unavailable", "how to",
              "test environment", "single user", "data breach", "production down"]
ZH = ("宕机 故障 超时 登录 密码 发票 账单 退款 数据库 死锁 查询 备份 恢复 网络 防火墙 证书 过期 升级 许可证 "
      "报表 导出 导入 崩溃 内存 磁盘 打印机 邮件 同步 接口 权限 付款 订单 库存 仓库 紧急 全部用户 无法访问 "
      "集群 容器 节点 网关 代理 缓存 消息队列 索引 主从 单点登录 认证 验证码 短信 定时任务 批处理 监控 告警 "
      "日志 审计 加密 握手 密钥 合同 续费 订阅 试用 迁移 回滚 补丁 发布 部署 构建 编译 分支 合并 冲突 "
      "工资 考勤 审批 流程 表单 签章 卡顿 闪退 白屏 乱码 丢失 重复 延迟 失败 异常 报错 无响应").split()
DOMAINS = ["bigbank.example", "acme.example.com", "shop.example.net", "uni.example.edu", "hospital.example.org",
           "mail.bigbank.example", "gmail.example.test"]
# Ordinary words that carry no rule keyword: real mail is mostly these.
FILLER = ("the a we our you your is are was were have has had been this that these it its in on at for "
          "from with since after before when then and but or not please could would should can will "
          "morning afternoon yesterday today team users customer system server service page screen "
          "button file folder report message number version update change setting option problem issue "
          "again still also only just very some many every each other same new old first last next "
          "thank thanks regards hello hi dear colleague department office branch manager staff").split()
ZH_FILLER = ["今天上午", "我们这边", "客户反馈", "请帮忙看一下", "谢谢", "麻烦尽量", "附件是截图", "之前一直正常",
             "昨天开始", "不知道是什么原因", "财务部", "销售部", "操作步骤如下", "重启以后", "还是一样"]
NOW = datetime(2026, 3, 9, 2, 0, tzinfo=timezone.utc)


def _list(words) -> str:
    return "[" + ", ".join(f'"{w}"' for w in words) + "]"


def generated_rules(n: int, rnd: random.Random) -> str:
    """n realistic rules: keyword tests in both languages, domains, regexes, headers, combinators."""
    out = []
    for i in range(n):
        kind = i % 8
        kw = rnd.sample(EN, 3) + rnd.sample(ZH, 2) + ([rnd.choice(EN_PHRASES)] if i % 3 == 0 else [])
        if kind in (0, 1, 2):
            when = f"{{ keywords = {_list(kw)} }}"
        elif kind == 3:
            when = f"{{ subject_keywords = {_list(kw)}, domain = \"{rnd.choice(DOMAINS[:5])}\" }}"
        elif kind == 4:
            when = (f"{{ any = [{{ body_keywords = {_list(kw)} }}, "
                    f"{{ body_regex = '\\b(?:ERR|E)-{rnd.randrange(100, 999)}\\d\\b' }}] }}")
        elif kind == 5:
            when = (f"{{ all = [{{ keywords = {_list(kw)} }}, "
                    f"{{ not = {{ keywords = {_list(rnd.sample(EN, 2))} }} }}] }}")
        elif kind == 6:
            when = (f"{{ any = [{{ header = {{ name = \"X-Ticket-Class\", value = \"c{i}\" }} }}, "
                    f"{{ attachment_name = \"*-{i}.log\" }}, {{ subject_regex = '\\[C{i}\\]' }}] }}")
        else:
            when = f"{{ customer_tier = \"key\", keywords = {_list(kw)} }}"
        action = rnd.choice([
            f'{{ category = "cat{i % 17}" }}', '{ impact = "high" }', '{ urgency = "high" }',
            '{ impact = "low" }', f'{{ tags = ["t{i}"] }}', '{ raise_priority = 1 }',
            '{ team = "dba" }', '{ watchers = ["project.manager"] }'])
        out.append(f'[[rules]]\nname = "gen-{i:03d}"\nwhen = {when}\nthen = {action}\n')
    return "\n".join(out)


def rules_file(n_rules: int, directory: Path) -> Path:
    sample = SAMPLE_RULES.read_text(encoding="utf-8")
    n_sample = sample.count("\n[[rules]]\n")
    path = directory / f"bench-{n_rules}.toml"
    path.write_text(sample + "\n" + generated_rules(max(0, n_rules - n_sample), random.Random(11)),
                    encoding="utf-8")
    return path


def generated_emails(n: int, rnd: random.Random) -> list[ParsedEmail]:
    out = []
    for i in range(n):
        zh = rnd.random() < 0.4
        words = ZH if zh else EN
        # A subject and a body with a few (0-3) words that rules look for, among ordinary ones.
        topic = rnd.sample(words, rnd.randrange(0, 4))
        if not zh and rnd.random() < 0.15:
            topic.append(rnd.choice(EN_PHRASES))
        subject = ("" if zh else " ").join(rnd.sample(ZH_FILLER if zh else FILLER, 2) + topic[:2])
        sentences = []
        for j in range(rnd.randrange(6, 20)):
            extra = [topic[j]] if j < len(topic) else []
            if zh:
                sentences.append("".join(rnd.sample(ZH_FILLER, 3) + extra) + "。")
            else:
                sentences.append(" ".join(rnd.sample(FILLER, 10) + extra).capitalize() + ".")
        text = ("您好：\n\n" if zh else "Hello support,\n\n") + "\n".join(sentences) + "\n\n-- \nRegards\n"
        files = ()
        if rnd.random() < 0.25:
            files = (Attachment(filename=f"server-{i}.log", content_type="text/plain", size=10,
                                sha256="0" * 64, content=b""),)
        headers = (("From", f"user{i}@x"), ("To", "support@support.example.com"), ("Subject", subject),
                   ("Date", "Mon, 09 Mar 2026 10:00:00 +0800"), ("Message-ID", f"<b{i}@x>"),
                   ("MIME-Version", "1.0"), ("Content-Type", "text/plain; charset=utf-8"),
                   ("X-Mailer", "Foxmail 7.2" if zh else "Thunderbird 115"), ("Received", "from a by b"),
                   ("X-Priority", rnd.choice(["1", "3", "3", "5"])))
        out.append(ParsedEmail(
            sender=Address("", f"user{rnd.randrange(500)}@{rnd.choice(DOMAINS)}"),
            to=(Address("", "support@support.example.com"),), cc=(), reply_to=(), subject=subject,
            message_id=f"b{i}@x", in_reply_to=(), references=(), date=None, text=text, html="",
            attachments=files, language="zh-CN" if zh else "en", headers=headers))
    return out


def time_routing(emails, cfg) -> float:
    t = time.perf_counter()
    for e in emails:
        route(e, cfg, recipients=("support@support.example.com",), now=NOW)
    return time.perf_counter() - t


def ingest_share(n_msgs: int, cfg_big, cfg_sample) -> None:
    try:
        from bench.corpus import generate
        from bench.ingest import pipeline_rate
        from parsers.message import parse_email
    except Exception as exc:  # noqa: BLE001 — the ingest bench is someone else's; say why it is unusable
        print(f"ingest comparison skipped: bench/ingest.py not usable ({exc.__class__.__name__}: {exc})")
        return
    if n_msgs <= 0:
        return
    msgs = generate(n_msgs)
    parsed = [parse_email(raw) for raw in msgs]
    runs = [pipeline_rate(msgs) for _ in range(2)]
    rates = [r for r, _ in runs]
    outcomes = runs[-1][1]
    print(f"ingest outcomes        : {outcomes}")
    if outcomes.get("quarantined"):
        print("  note: the pipeline quarantined messages in this run, so its time per message is not"
              " yet the full ingest cost")
    ingest_s = 1 / max(rates)  # seconds per message, routing with the sample rules included
    r_sample = min(time_routing(parsed, cfg_sample) for _ in range(3)) / n_msgs
    r_big = min(time_routing(parsed, cfg_big) for _ in range(3)) / n_msgs
    with_big = ingest_s - r_sample + r_big  # the same pipeline, had it run the 200 rules
    print(f"ingest pipeline        : {1 / ingest_s:8.1f} msgs/s = {ingest_s * 1e6:8.0f} us/msg "
          f"({n_msgs} generated messages, sample rules)")
    print(f"routing, sample rules  : {r_sample * 1e6:8.1f} us/msg")
    print(f"routing, {len(cfg_big.rules)} rules     : {r_big * 1e6:8.1f} us/msg")
    print(f"routing share of ingest: {r_big / with_big:8.1%} with {len(cfg_big.rules)} rules, "
          f"{r_sample / ingest_s:.1%} with the sample rules  (target < 10%)")


def main() -> None:
    n_emails = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    n_rules = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    n_ingest = int(sys.argv[3]) if len(sys.argv) > 3 else 400
    with tempfile.TemporaryDirectory() as d:
        path = rules_file(n_rules, Path(d))
        t = time.perf_counter()
        cfg = load_rules(path)
        load_s = time.perf_counter() - t
    sample = load_rules()
    emails = generated_emails(n_emails, random.Random(5))
    print(f"rules: {len(cfg.rules)} (load + validate + compile {load_s * 1000:.0f} ms); "
          f"emails: {len(emails)} generated ParsedEmail values")
    rounds = [time_routing(emails, cfg) for _ in range(3)]
    best, med = min(rounds), statistics.median(rounds)
    print(f"decisions/second       : {len(emails) / med:8.0f}  (median of 3; best {len(emails) / best:.0f}; "
          f"target > 5000)")
    print(f"time per decision      : {med / len(emails) * 1e6:8.1f} us")
    matched = sum(sum(1 for s in route(e, cfg, now=NOW).trace) for e in emails[:1000]) / 1000
    print(f"rules matched/email    : {matched:8.1f}  (avg over 1000)")
    ingest_share(n_ingest, cfg, sample)


if __name__ == "__main__":
    main()
