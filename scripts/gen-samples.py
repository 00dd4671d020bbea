#!/usr/bin/env python3
"""Writes sample-reports/story/: four weeks of daily DMARC aggregate reports that tell a story.

Run from the repository root: `scripts/gen-samples.py` (deterministic: the same files every time;
commit what it writes). The reporters, their file names, containers and quirks are those modelled in
sample-reports/<reporter>/: Google (an email with a zip), Yahoo (.xml.gz), Microsoft (an email with
a gzip), Mail.Ru (.xml.gz), GMX (an email with the RFC 9990 XML inline), Cisco IronPort (.zip) and
Mimecast (.xml.gz).

The story, 2026-11-02 to 2026-11-29:

example.org publishes p=none and reads its reports before tightening. Who sends as example.org:
- its mail platform, Google Workspace: DKIM d=example.org and SPF for example.org, aligned;
- SendGrid, for the newsletter (Tuesdays) and the shop's receipts (daily): DKIM d=sendgrid.net and
  a sendgrid.net return path, so nothing aligns: the sender to fix before p=quarantine;
- an alumni forwarder (alumni.example) with SRS: SPF passes for the forwarder, example.org's DKIM
  survives;
- a mailing list (lists.community.example) that adds a footer: DKIM breaks, SPF passes for the
  list; receivers that see ARC (Google: local_policy arc=pass, Mimecast: mailing_list) say so;
- spoofing from random addresses: nothing passes, or SPF passes for the spammer's own domain.

example.net is parked: p=reject, it sends no mail, and what claims to be from it is rejected.
"""

import base64
import gzip
import io
import os
import random
import shutil
import zipfile

START = 1_793_577_600  # 2026-11-02T00:00:00Z, a Monday
DAYS = 28
OUT = os.path.join("sample-reports", "story")

# Share of example.org's recipients at each receiver.
SHARES = {
    "google": 0.46,
    "microsoft": 0.24,
    "yahoo": 0.12,
    "mimecast": 0.07,
    "gmx": 0.05,
    "ironport": 0.04,
    "mailru": 0.02,
}

WORKSPACE_IPS = [
    "209.85.220.41",
    "209.85.220.69",
    "209.85.218.50",
    "2a00:1450:4864:20::531",
    "2607:f8b0:4864:20::62a",
]
# The chance that a small receiver saw any of example.org's own mail on a day (a receiver reports
# only for days it saw mail).
SOME_DAYS = {"gmx": 0.3, "ironport": 0.3, "mailru": 0.25, "mimecast": 0.6}

SENDGRID_IPS = ["167.89.100.12", "167.89.100.27", "167.89.101.3", "167.89.115.58"]
FORWARDER_IP = "198.51.100.80"
LIST_IPS = ["203.0.113.25", "2001:db8:25::10"]
SPAMMER_DOMAINS = ["bulk-offers.example", "cheap-pills.example"]


def rec(ip, count, dkim, spf, auth_dkim, auth_spf, reason=None, disposition="none", envelope_from=None):
    """One record: policy_evaluated (dkim, spf: pass/fail), auth_results (lists of (domain, selector,
    result) and (domain, result)), an override reason (type, comment)."""
    return dict(
        ip=ip,
        count=count,
        dkim=dkim,
        spf=spf,
        auth_dkim=auth_dkim,
        auth_spf=auth_spf,
        reason=reason,
        disposition=disposition,
        envelope_from=envelope_from,
    )


def day_traffic(rng, day, domain):
    """The mail example.org's (or example.net's) recipients received on `day`, as records per
    receiver."""
    weekday = day % 7  # 0 = Monday
    weekend = weekday >= 5
    out = {r: [] for r in SHARES}
    if domain == "example.org":
        own = rng.randint(120, 200) if weekend else rng.randint(800, 1000)
        receipts = rng.randint(15, 30) if weekend else rng.randint(45, 70)
        newsletter = rng.randint(900, 1000) if weekday == 1 else 0
        forwarded = rng.randint(4, 12)
        listed = 0 if weekend else rng.randint(10, 25)
        spoofed = rng.randint(5, 40)
        for r, share in SHARES.items():
            if rng.random() > SOME_DAYS.get(r, 1.0):
                continue
            n = round(own * share * rng.uniform(0.8, 1.2))
            ips = rng.sample(WORKSPACE_IPS, 2)
            if n:
                first = max(1, round(n * 0.8))
                out[r].append(rec(ips[0], first, "pass", "pass", [("example.org", "google", "pass")], [("example.org", "pass")], envelope_from="example.org"))
                if n - first:
                    out[r].append(rec(ips[1], n - first, "pass", "pass", [("example.org", "google", "pass")], [("example.org", "pass")], envelope_from="example.org"))
            m = round((receipts + newsletter) * share * rng.uniform(0.8, 1.2))
            if m:
                ip = rng.choice(SENDGRID_IPS)
                out[r].append(rec(ip, m, "fail", "fail", [("sendgrid.net", "smtpapi", "pass")], [("sendgrid.net", "pass")], envelope_from="sendgrid.net"))
        # Forwarded mail ends up mostly at Gmail; the list's readers at Google, Yahoo and Mimecast.
        if forwarded:
            out["google"].append(rec(FORWARDER_IP, forwarded, "pass", "fail", [("example.org", "google", "pass")], [("alumni.example", "pass")], envelope_from="alumni.example"))
        if listed:
            g = round(listed * 0.6)
            out["google"].append(rec(LIST_IPS[0], g, "fail", "fail", [("example.org", "google", "fail")], [("lists.community.example", "pass")], reason=("local_policy", "arc=pass"), envelope_from="lists.community.example"))
            out["yahoo"].append(rec(LIST_IPS[0], max(1, listed // 5), "fail", "fail", [("example.org", "google", "fail")], [("lists.community.example", "pass")], envelope_from="lists.community.example"))
            out["mimecast"].append(rec(LIST_IPS[1], max(1, listed - g - listed // 5), "fail", "fail", [("example.org", "google", "fail")], [("lists.community.example", "pass")], reason=("mailing_list", None), envelope_from="lists.community.example"))
        spoof_at = ["google", "microsoft", "yahoo", "google", "microsoft", "mailru"]
        for _ in range(rng.randint(1, 3)):
            r = rng.choice(spoof_at)
            n = max(1, spoofed // 3)
            ip = f"{rng.choice([45, 91, 103, 185, 194])}.{rng.randint(1, 254)}.{rng.randint(1, 254)}.{rng.randint(1, 254)}"
            if rng.random() < 0.3:
                spammer = rng.choice(SPAMMER_DOMAINS)
                out[r].append(rec(ip, n, "fail", "fail", [], [(spammer, "pass")], envelope_from=spammer))
            else:
                out[r].append(rec(ip, n, "fail", "fail", [], [("example.org", rng.choice(["fail", "softfail"]))], envelope_from="example.org"))
    else:
        for r in ("google", "microsoft"):
            if (r == "microsoft" and day % 3) or (r == "google" and day % 2):
                continue
            for _ in range(rng.randint(1, 2)):
                ip = f"{rng.choice([45, 91, 103, 185])}.{rng.randint(1, 254)}.{rng.randint(1, 254)}.{rng.randint(1, 254)}"
                out[r].append(rec(ip, rng.randint(2, 30), "fail", "fail", [], [("example.net", "fail")], disposition="reject", envelope_from="example.net"))
    return out


def record_xml(r, envelope_from=False, envelope_to=None, scope=False, human=False):
    reason = ""
    if r["reason"]:
        kind, comment = r["reason"]
        reason = f"\n        <reason>\n          <type>{kind}</type>"
        if comment:
            reason += f"\n          <comment>{comment}</comment>"
        reason += "\n        </reason>"
    ids = ""
    if envelope_to:
        ids += f"\n      <envelope_to>{envelope_to}</envelope_to>"
    if envelope_from and r["envelope_from"]:
        ids += f"\n      <envelope_from>{r['envelope_from']}</envelope_from>"
    auth = ""
    for d, sel, res in r["auth_dkim"]:
        auth += f"\n      <dkim>\n        <domain>{d}</domain>\n        <selector>{sel}</selector>\n        <result>{res}</result>"
        if human:
            auth += f"\n        <human_result>{'signature verified' if res == 'pass' else 'body hash did not verify'}</human_result>"
        auth += "\n      </dkim>"
    for d, res in r["auth_spf"]:
        auth += f"\n      <spf>\n        <domain>{d}</domain>"
        if scope:
            auth += "\n        <scope>mfrom</scope>"
        auth += f"\n        <result>{res}</result>\n      </spf>"
    return f"""  <record>
    <row>
      <source_ip>{r['ip']}</source_ip>
      <count>{r['count']}</count>
      <policy_evaluated>
        <disposition>{r['disposition']}</disposition>
        <dkim>{r['dkim']}</dkim>
        <spf>{r['spf']}</spf>{reason}
      </policy_evaluated>
    </row>
    <identifiers>{ids}
      <header_from>{header_from(r)}</header_from>
    </identifiers>
    <auth_results>{auth}
    </auth_results>
  </record>
"""


def header_from(r):
    return r.get("header_from", "example.org")


def policy(domain, fields):
    p = {"example.org": "none", "example.net": "reject"}[domain]
    values = {"adkim": "r", "aspf": "r", "p": p, "sp": p, "np": p, "pct": "100", "fo": "1", "testing": "n", "discovery_method": "treewalk"}
    body = "".join(f"\n    <{f}>{values[f]}</{f}>" for f in fields)
    return f"  <policy_published>\n    <domain>{domain}</domain>{body}\n  </policy_published>\n"


def feedback(head, meta, pol, records):
    return f"""<?xml version="1.0" encoding="UTF-8" ?>
{head}
{meta}{pol}{records}</feedback>
"""


def meta(org, email, report_id, begin, end, extra=None, generator=None):
    out = f"  <report_metadata>\n    <org_name>{org}</org_name>\n    <email>{email}</email>\n"
    if extra:
        out += f"    <extra_contact_info>{extra}</extra_contact_info>\n"
    out += f"    <report_id>{report_id}</report_id>\n    <date_range>\n      <begin>{begin}</begin>\n      <end>{end}</end>\n    </date_range>\n"
    if generator:
        out += f"    <generator>{generator}</generator>\n"
    return out + "  </report_metadata>\n"


def gz(data):
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as f:
        f.write(data)
    return buf.getvalue()


def zipped(name, data):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo(name, date_time=(2026, 11, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        z.writestr(info, data)
    return buf.getvalue()


def b64(data):
    text = base64.b64encode(data).decode()
    return "\n".join(text[i : i + 76] for i in range(0, len(text), 76))


def email(headers, boundary, text, ctype, filename, payload, encoding="base64"):
    head = "".join(f"{k}: {v}\n" for k, v in headers)
    body = b64(payload) if encoding == "base64" else payload.decode()
    return f"""Content-Type: multipart/mixed; boundary="{boundary}"
MIME-Version: 1.0
{head}
--{boundary}
Content-Type: text/plain; charset="us-ascii"
MIME-Version: 1.0
Content-Transfer-Encoding: 7bit

{text}
--{boundary}
Content-Type: {ctype}
MIME-Version: 1.0
Content-Transfer-Encoding: {encoding}
Content-Disposition: attachment;
 filename="{filename}"

{body}
--{boundary}--
""".encode()


def rfc2822(t, zone="+0000"):
    import time

    offset = 3600 if zone == "+0100" else 0
    return time.strftime("%a, %d %b %Y %H:%M:%S", time.gmtime(t + offset)) + f" {zone}"


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def main():
    rng = random.Random(20261102)
    shutil.rmtree(OUT, ignore_errors=True)
    for day in range(DAYS):
        begin = START + day * 86_400
        end = begin + 86_399
        date = f"2026-11-{2 + day:02}"
        for domain in ("example.org", "example.net"):
            traffic = day_traffic(rng, day, domain)
            for reporter, records in traffic.items():
                if not records:
                    continue
                emit(rng, reporter, domain, date, begin, end, records)


def emit(rng, reporter, domain, date, begin, end, records):
    stem = f"{domain}/{reporter}"
    if reporter == "google":
        rid = str(rng.randrange(10**19, 10**20))
        xml = feedback("<feedback>", meta("google.com", "noreply-dmarc-support@google.com", rid, begin, end, extra="https://support.google.com/a/answer/2466580"), policy(domain, ["adkim", "aspf", "p", "sp", "pct"]), "".join(record_xml(r) for r in records))
        name = f"google.com!{domain}!{begin}!{end}"
        mail = email(
            [("From", "noreply-dmarc-support@google.com"), ("To", f"dmarc@{domain}"), ("Subject", f"Report domain: {domain} Submitter: google.com Report-ID:\n {rid}"), ("Date", rfc2822(end + 15_000)), ("Message-ID", f"<{rid}@google.com>")],
            f"==============={rng.randrange(10**18, 10**19)}==",
            "",
            "application/zip",
            name + ".zip",
            zipped(name + ".xml", xml.encode()),
        )
        write(f"{OUT}/{stem}/{date}.eml", mail)
    elif reporter == "yahoo":
        rid = f"{end + 42_000}.{rng.randrange(100000, 999999)}"
        xml = feedback("<feedback>", meta("Yahoo", "dmarchelp@yahooinc.com", rid, begin, end), policy(domain, ["adkim", "aspf", "p", "pct"]), "".join(record_xml(r, envelope_from=True) for r in records))
        write(f"{OUT}/{stem}/yahoo.com!{domain}!{begin}!{end}.xml.gz", gz(xml.encode()))
    elif reporter == "microsoft":
        rid = "%032x" % rng.getrandbits(128)
        head = '<feedback xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n  <version>1.0</version>'
        xml = feedback(head, meta("Enterprise Outlook", "dmarcreport@microsoft.com", rid, begin, end), policy(domain, ["adkim", "aspf", "p", "sp", "pct", "fo"]), "".join(record_xml(r, envelope_from=True, envelope_to="contoso.example", scope=True) for r in records))
        xml = xml.replace('<?xml version="1.0" encoding="UTF-8" ?>', '<?xml version="1.0"?>')
        name = f"enterprise.protection.outlook.com!{domain}!{begin}!{end}.xml.gz"
        mail = email(
            [("From", "DMARC Aggregate Report <dmarcreport@microsoft.com>"), ("To", f"dmarc@{domain}"), ("Subject", f"Report Domain: {domain} Submitter:\n enterprise.protection.outlook.com Report-ID:\n <{rid}>"), ("Date", rfc2822(end + 15_000)), ("Message-ID", f"<{rid[:8]}@microsoft.com>")],
            f"==============={rng.randrange(10**18, 10**19)}==",
            "This is a DMARC aggregate report from Microsoft Corporation.",
            "application/gzip",
            name,
            gz(xml.encode()),
        )
        write(f"{OUT}/{stem}/{date}.eml", mail)
    elif reporter == "mailru":
        rid = f"{rng.randrange(10**19, 10**20)}{begin}"
        xml = feedback("<feedback>", meta("Mail.Ru", "dmarc_support@corp.mail.ru", rid, begin, end, extra="http://help.mail.ru/mail-help"), policy(domain, ["adkim", "aspf", "p", "sp", "pct"]), "".join(record_xml(r, scope=True) for r in records))
        write(f"{OUT}/{stem}/mail.ru!{domain}!{begin}!{end}.xml.gz", gz(xml.encode()))
    elif reporter == "gmx":
        rid = f"gmx-{date}-{domain}-{rng.getrandbits(24):06x}"
        head = '<feedback xmlns="urn:ietf:params:xml:ns:dmarc-2.0">\n  <version>2.0</version>'
        xml = feedback(head, meta("GMX", "noreply-dmarc@gmx.net", rid, begin, end, generator="GMX DMARC reporter 3.1"), policy(domain, ["adkim", "aspf", "p", "sp", "np", "testing", "discovery_method"]), "".join(record_xml(r, envelope_from=True, scope=True, human=True) for r in records))
        xml = xml.replace('<?xml version="1.0" encoding="UTF-8" ?>', '<?xml version="1.0" encoding="UTF-8"?>')
        mail = email(
            [("From", "noreply-dmarc@gmx.net"), ("To", f"dmarc@{domain}"), ("Subject", f"Report Domain: {domain} Submitter: gmx.net"), ("Date", rfc2822(end + 7_200, "+0100")), ("Message-ID", f"<{rid}@gmx.net>")],
            f"==============={rng.randrange(10**18, 10**19)}==",
            "DMARC aggregate report (RFC 9990).",
            'text/xml; charset="us-ascii"',
            f"gmx.net!{domain}!{begin}!{end}.xml",
            xml.encode(),
            encoding="7bit",
        )
        write(f"{OUT}/{stem}/{date}.eml", mail)
    elif reporter == "ironport":
        host = "esa1.partner.example"
        xml = feedback("<feedback>", meta("Cisco Systems, Inc.", f"dmarc-reports@{host}", f"{host}-{begin}@{host}", begin, end), policy(domain, ["adkim", "aspf", "p", "pct"]), "".join(record_xml(r, scope=True) for r in records))
        name = f"{host}!{domain}!{begin}!{end}"
        write(f"{OUT}/{stem}/{name}.zip", zipped(name + ".xml", xml.encode()))
    elif reporter == "mimecast":
        u = "%032x" % rng.getrandbits(128)
        rid = f"{u[:8]}-{u[8:12]}-{u[12:16]}-{u[16:20]}-{u[20:]}"
        head = "<feedback>\n  <version>1.0</version>"
        xml = feedback(head, meta("Mimecast", "dmarc-report@mimecast.org", rid, begin, end), policy(domain, ["adkim", "aspf", "p", "sp", "pct"]), "".join(record_xml(r, scope=True) for r in records))
        write(f"{OUT}/{stem}/mimecast.org!{domain}!{begin}!{end}.xml.gz", gz(xml.encode()))


if __name__ == "__main__":
    main()
