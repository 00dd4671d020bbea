//! `senders` and `advise` over generated reports, one scenario per case of issues 5 and 10: a clean domain
//! steps up; an unaligned ESP blocks; spoofing alone does not; forwarding does not block; too little
//! data keeps collecting; a tightening that hurts backs off; subdomains get sp=; the config's
//! declared senders override the guess.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use crate::cli::{Backend, Env, s};

/// One `<record>`.
#[derive(Clone, Copy)]
pub(crate) struct Rec<'a> {
    pub(crate) ip: &'a str,
    pub(crate) count: u64,
    pub(crate) header_from: &'a str,
    /// DKIM signature: (domain, result); empty domain for none.
    pub(crate) dkim: (&'a str, &'a str),
    /// SPF: (domain, result).
    pub(crate) spf: (&'a str, &'a str),
    /// `policy_evaluated` aligned DKIM / SPF.
    pub(crate) aligned: (bool, bool),
    pub(crate) disposition: &'a str,
    pub(crate) reason: Option<&'a str>,
}

pub(crate) const OWN: Rec<'static> = Rec {
    ip: "192.0.2.10",
    count: 40,
    header_from: "",
    dkim: ("", "pass"),
    spf: ("", "pass"),
    aligned: (true, true),
    disposition: "none",
    reason: None,
};

/// A published policy as reports show it.
#[derive(Clone, Copy)]
pub(crate) struct Pol {
    p: &'static str,
    pct: Option<u32>,
    sp: Option<&'static str>,
    /// RFC 9990 `<testing>`.
    t: Option<&'static str>,
}

pub(crate) const NONE: Pol = Pol {
    p: "none",
    pct: Some(100),
    sp: None,
    t: None,
};

pub(crate) fn pol(p: &'static str) -> Pol {
    Pol {
        p,
        pct: None,
        ..NONE
    }
}

impl Pol {
    fn pct(self, pct: u32) -> Pol {
        Pol {
            pct: Some(pct),
            ..self
        }
    }

    fn sp(self, sp: &'static str) -> Pol {
        Pol {
            sp: Some(sp),
            ..self
        }
    }

    fn testing(self) -> Pol {
        Pol {
            t: Some("y"),
            ..self
        }
    }
}

/// A report by `org` for `domain` on `day` (days after 2026-10-01) under `policy`.
pub(crate) fn report(org: &str, domain: &str, day: i64, policy: Pol, recs: &[Rec<'_>]) -> String {
    let begin = 1_790_812_800 + day * 86_400;
    let Pol { p, pct, sp, t } = policy;
    let mut xml = format!(
        "<?xml version=\"1.0\"?><feedback><report_metadata><org_name>{org}</org_name>\
         <email>r@{org}</email><report_id>{org}-{domain}-{day}</report_id><date_range>\
         <begin>{begin}</begin><end>{}</end></date_range></report_metadata><policy_published>\
         <domain>{domain}</domain><adkim>r</adkim><aspf>r</aspf><p>{p}</p>",
        begin + 86_399
    );
    if let Some(sp) = sp {
        write!(xml, "<sp>{sp}</sp>").unwrap();
    }
    if let Some(pct) = pct {
        write!(xml, "<pct>{pct}</pct>").unwrap();
    }
    if let Some(t) = t {
        write!(xml, "<testing>{t}</testing>").unwrap();
    }
    xml.push_str("</policy_published>");
    for r in recs {
        // An empty domain stands for the policy domain.
        let or_domain = |x: &str| {
            if x.is_empty() {
                domain.to_owned()
            } else {
                x.to_owned()
            }
        };
        let from = or_domain(r.header_from);
        let pass = |b: bool| if b { "pass" } else { "fail" };
        write!(
            xml,
            "<record><row><source_ip>{}</source_ip><count>{}</count><policy_evaluated>\
             <disposition>{}</disposition><dkim>{}</dkim><spf>{}</spf>",
            r.ip,
            r.count,
            r.disposition,
            pass(r.aligned.0),
            pass(r.aligned.1)
        )
        .unwrap();
        if let Some(reason) = r.reason {
            write!(xml, "<reason><type>{reason}</type></reason>").unwrap();
        }
        write!(
            xml,
            "</policy_evaluated></row><identifiers><header_from>{from}</header_from></identifiers>\
             <auth_results>"
        )
        .unwrap();
        if r.dkim.1 != "none" {
            write!(
                xml,
                "<dkim><domain>{}</domain><selector>s1</selector><result>{}</result></dkim>",
                or_domain(r.dkim.0),
                r.dkim.1
            )
            .unwrap();
        }
        write!(
            xml,
            "<spf><domain>{}</domain><scope>mfrom</scope><result>{}</result></spf></auth_results></record>",
            or_domain(r.spf.0),
            r.spf.1
        )
        .unwrap();
    }
    xml.push_str("</feedback>");
    xml
}

/// Writes `days` days of reports from two reporters into `dir`.
fn reports(dir: &Path, domain: &str, days: i64, policy: Pol, recs: &[Rec<'_>]) {
    std::fs::create_dir_all(dir).unwrap();
    for day in 0..days {
        for org in ["google.com", "yahoo.com"] {
            std::fs::write(
                dir.join(format!("{org}-{domain}-{day}.xml")),
                report(org, domain, day, policy, recs),
            )
            .unwrap();
        }
    }
}

/// Ingests `recs` for `domain` and returns (`advise --format json`[0], `senders --format json`),
/// after checking that both backends answer the same.
fn judge(
    domain: &str,
    days: i64,
    policy: Pol,
    recs: &[Rec<'_>],
    config: &str,
) -> (Value, Vec<Value>) {
    let sqlite = judge_on(Backend::Sqlite, domain, days, policy, recs, config);
    let postgres = judge_on(Backend::Postgres, domain, days, policy, recs, config);
    assert_eq!(sqlite, postgres, "SQLite and PostgreSQL answer alike");
    sqlite
}

fn judge_on(
    backend: Backend,
    domain: &str,
    days: i64,
    policy: Pol,
    recs: &[Rec<'_>],
    config: &str,
) -> (Value, Vec<Value>) {
    let env = Env::on(backend);
    let dir = env.dir.path().join("reports");
    reports(&dir, domain, days, policy, recs);
    let config_path = env.dir.path().join("config.toml");
    std::fs::write(&config_path, config).unwrap();
    let out = env.run(&["ingest", "--quiet", s(&dir)]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let c = s(&config_path);
    let advice = env.run(&["advise", "--offline", "--config", c, "--format", "json"]);
    assert_eq!(advice.code, 0, "{}", advice.stderr);
    let senders = env
        .run(&["senders", "--config", c, "--format", "json"])
        .json();
    (advice.json()[0].clone(), senders)
}

fn sender<'a>(senders: &'a [Value], name: &str) -> &'a Value {
    senders
        .iter()
        .find(|s| s["sender"] == name)
        .unwrap_or_else(|| panic!("no sender {name} in {senders:#?}"))
}

const SPOOF: Rec<'static> = Rec {
    ip: "203.0.113.66",
    count: 15,
    header_from: "",
    dkim: ("", "none"),
    spf: ("spoofer.example", "fail"),
    aligned: (false, false),
    disposition: "none",
    reason: None,
};

/// Issue 10: the default ladder's first step enforces nothing at either kind of receiver.
#[test]
fn a_clean_domain_steps_up_to_quarantine_in_testing() {
    let (advice, senders) = judge("clean.example", 14, NONE, &[OWN, SPOOF], "");
    assert_eq!(advice["domain"], "clean.example");
    assert_eq!(advice["current"]["p"], "none");
    assert_eq!(advice["current"]["pct"], 100);
    assert_eq!(advice["current"]["t"], Value::Null);
    assert_eq!(advice["ready"], true, "{advice:#}");
    assert_eq!(advice["action"], "step up");
    assert_eq!(advice["recommended"]["p"], "quarantine");
    assert_eq!(advice["recommended"]["t"], "y");
    assert_eq!(advice["recommended"]["pct"], 0);
    assert_eq!(advice["recommended"]["sp"], "quarantine");
    assert_eq!(
        advice["record"],
        "v=DMARC1; p=quarantine; t=y; pct=0; sp=quarantine; np=quarantine; rua=mailto:dmarc@clean.example"
    );
    assert!(advice["blockers"].as_array().unwrap().is_empty());
    assert_eq!(sender(&senders, "clean.example")["class"], "aligned");
    // Spoofing is what the policy stops: it does not block the step.
    let spoof = sender(&senders, "unidentified");
    assert_eq!(spoof["class"], "unauthorised");
    assert_eq!(spoof["messages"], 14 * 2 * 15);
}

/// Issue 10: each rung of the default ladder, published and clean, leads to the next one; the
/// record never carries a pct between 1 and 99.
#[test]
fn a_clean_domain_climbs_the_rfc_9989_ladder() {
    let cases = [
        (
            "q-testing.example",
            pol("quarantine").testing(),
            "v=DMARC1; p=quarantine; sp=quarantine",
        ),
        (
            "q.example",
            pol("quarantine"),
            "v=DMARC1; p=reject; t=y; pct=0; sp=reject",
        ),
        (
            "q100.example",
            pol("quarantine").pct(100),
            "v=DMARC1; p=reject; t=y; pct=0; sp=reject",
        ),
        (
            "r-testing.example",
            pol("reject").testing().pct(0),
            "v=DMARC1; p=reject; sp=reject",
        ),
    ];
    for (domain, policy, record) in cases {
        let (advice, _) = judge(domain, 14, policy, &[OWN, SPOOF], "");
        assert_eq!(advice["action"], "step up", "{domain}: {advice:#}");
        let got = advice["record"].as_str().unwrap();
        assert!(got.starts_with(record), "{domain}: {got}");
        assert!(
            !(1..100).any(|pct| got.contains(&format!("pct={pct};"))),
            "{domain}: {got}"
        );
        assert_eq!(
            advice["current"]["t"],
            if policy.t.is_some() {
                Value::from("y")
            } else {
                Value::Null
            },
            "{domain}"
        );
    }
}

/// Issue 10: `p=quarantine; pct=10` quarantines everything at RFC 9989 receivers: it is the
/// quarantine rung, and advise says why.
#[test]
fn a_published_partial_pct_is_read_as_enforced_and_explained() {
    let (advice, _) = judge(
        "pct10.example",
        14,
        pol("quarantine").pct(10),
        &[OWN, SPOOF],
        "",
    );
    assert_eq!(advice["action"], "step up", "{advice:#}");
    assert_eq!(advice["recommended"]["p"], "reject");
    assert_eq!(advice["recommended"]["t"], "y");
    assert_eq!(advice["recommended"]["pct"], 0);
    let notes = advice["notes"].to_string();
    assert!(
        notes.contains("pct=10 is not honoured by RFC 9989 receivers"),
        "{notes}"
    );
}

/// Issue 10: the older NCSC percentage ladder, when chosen, with the RFC 9989 caveat.
#[test]
fn the_pct_ladder_when_configured() {
    let config = "[advice]\nladder = \"pct\"\n";
    let (advice, _) = judge("ladder.example", 14, NONE, &[OWN, SPOOF], config);
    assert_eq!(advice["recommended"]["p"], "quarantine");
    assert_eq!(advice["recommended"]["pct"], 10);
    assert_eq!(advice["recommended"]["t"], Value::Null);
    assert!(
        advice["record"]
            .as_str()
            .unwrap()
            .starts_with("v=DMARC1; p=quarantine; pct=10; sp=quarantine"),
        "{advice:#}"
    );
    let notes = advice["notes"].to_string();
    assert!(
        notes.contains("RFC 9989 receivers ignore pct=10"),
        "{notes}"
    );
    let (advice, _) = judge(
        "ladder25.example",
        14,
        pol("quarantine").pct(25),
        &[OWN, SPOOF],
        config,
    );
    assert_eq!(advice["recommended"]["pct"], 50, "{advice:#}");
    let env = Env::new();
    let bad = env.dir.path().join("bad.toml");
    std::fs::write(&bad, "[advice]\nladder = \"fast\"\n").unwrap();
    let out = env.run(&["advise", "--config", s(&bad)]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("[advice] ladder"), "{}", out.stderr);
}

pub(crate) const SENDGRID: Rec<'static> = Rec {
    ip: "167.89.1.1",
    count: 30,
    header_from: "",
    dkim: ("sendgrid.net", "pass"),
    spf: ("em123.sendgrid.net", "pass"),
    aligned: (false, false),
    disposition: "none",
    reason: None,
};

#[test]
fn an_unaligned_esp_blocks_with_the_fix_named() {
    let (advice, senders) = judge("esp.example", 14, NONE, &[OWN, SENDGRID], "");
    assert_eq!(advice["ready"], false);
    assert_eq!(advice["action"], "hold");
    assert_eq!(advice["recommended"]["p"], "none");
    let blocker = &advice["blockers"][0];
    assert_eq!(blocker["sender"], "SendGrid");
    assert_eq!(blocker["messages"], 14 * 2 * 30);
    let reason = blocker["reason"].as_str().unwrap();
    assert!(
        reason.contains("DKIM signs with sendgrid.net, not esp.example"),
        "{reason}"
    );
    assert!(reason.contains("return-path"), "{reason}");
    assert_eq!(sender(&senders, "SendGrid")["class"], "needs_fixing");
}

#[test]
fn forwarded_mail_does_not_block() {
    let list = Rec {
        ip: "198.51.100.5",
        count: 12,
        dkim: ("", "fail"),
        spf: ("lists.example.net", "pass"),
        aligned: (false, false),
        reason: Some("mailing_list"),
        ..OWN
    };
    let forwarder = Rec {
        ip: "198.51.100.77",
        count: 9,
        dkim: ("", "pass"),
        spf: ("forwarder.example.net", "pass"),
        aligned: (true, false),
        ..OWN
    };
    let (advice, senders) = judge("fwd.example", 14, NONE, &[OWN, list, forwarder], "");
    assert_eq!(
        sender(&senders, "example.net")["class"],
        "forwarded",
        "{senders:#?}"
    );
    assert_eq!(advice["ready"], true, "{advice:#}");
    assert_eq!(advice["recommended"]["p"], "quarantine");
}

#[test]
fn too_little_data_keeps_collecting_and_says_what_is_missing() {
    let (advice, _) = judge("young.example", 3, NONE, &[OWN], "");
    assert_eq!(advice["ready"], false);
    assert_eq!(advice["action"], "keep collecting");
    let notes = advice["notes"].to_string();
    assert!(notes.contains("4 more days of reports"), "{notes}");
    assert_eq!(advice["recommended"]["p"], "none");
}

/// Issue 18: a domain already at the target (subdomains included) stays "at target" with fewer
/// days than the window, with a note; it still backs off when legitimate mail is hurt, and one at
/// p=reject whose subdomains are not yet covered keeps collecting for that step.
#[test]
fn at_target_a_short_window_does_not_keep_collecting() {
    let (advice, _) = judge("done.example", 3, pol("reject").sp("reject"), &[OWN], "");
    assert_eq!(advice["action"], "at target", "{advice:#}");
    assert_eq!(advice["ready"], false);
    assert_eq!(advice["evidence"]["days"], 3);
    assert_eq!(advice["recommended"]["p"], "reject");
    assert_eq!(advice["recommended"]["sp"], "reject");
    let notes = advice["notes"].to_string();
    assert!(
        notes.contains("at the target (p=reject), so a short window does not matter"),
        "{notes}"
    );
    assert!(notes.contains("4 more days of reports"), "{notes}");
    assert!(!notes.contains("keep collecting"), "{notes}");

    let hurt = Rec {
        disposition: "reject",
        ..SENDGRID
    };
    let (advice, _) = judge(
        "done-hurt.example",
        3,
        pol("reject").sp("reject"),
        &[OWN, hurt],
        "",
    );
    assert_eq!(advice["action"], "back off", "{advice:#}");

    let (advice, _) = judge("no-sp.example", 3, pol("reject"), &[OWN], "");
    assert_eq!(advice["action"], "keep collecting", "{advice:#}");
}

/// Issue 10: back-off names who is hurt, proposes a record that enforces nothing at either kind of
/// receiver, and says what stepping back costs.
#[test]
fn a_tightening_that_hurts_legitimate_mail_backs_off_naming_who_is_hurt() {
    for (domain, policy, disposition) in [
        ("hurt-q.example", pol("quarantine").pct(50), "quarantine"),
        ("hurt-r.example", pol("reject").sp("reject"), "reject"),
    ] {
        let hurt = Rec {
            disposition,
            ..SENDGRID
        };
        let stopped = Rec {
            disposition,
            ..SPOOF
        };
        let (advice, _) = judge(domain, 14, policy, &[OWN, hurt, stopped], "");
        assert_eq!(advice["action"], "back off", "{advice:#}");
        assert_eq!(advice["ready"], false);
        assert_eq!(advice["recommended"]["p"], "quarantine");
        assert_eq!(advice["recommended"]["t"], "y");
        assert_eq!(advice["recommended"]["pct"], 0);
        let record = advice["record"].as_str().unwrap();
        assert!(
            record.starts_with("v=DMARC1; p=quarantine; t=y; pct=0;"),
            "{record}"
        );
        // sp= steps back too: sp=reject with t=y would still quarantine subdomain mail.
        assert!(!record.contains("sp=reject"), "{record}");
        let blocker = &advice["blockers"][0];
        assert_eq!(blocker["sender"], "SendGrid", "{advice:#}");
        assert_eq!(blocker["messages"], 14 * 2 * 30);
        let reason = blocker["reason"].as_str().unwrap();
        assert!(reason.contains("quarantined or rejected"), "{reason}");
        assert!(reason.contains("DKIM signs with sendgrid.net"), "{reason}");
        let first = advice["notes"][0].as_str().unwrap();
        assert!(
            first.starts_with("legitimate mail is being quarantined"),
            "{first}"
        );
        let notes = advice["notes"].to_string();
        assert!(
            notes.contains(&format!(
                "what stepping back costs: {} unauthorised messages",
                14 * 2 * 15
            )),
            "{notes}"
        );
        assert!(notes.contains("before stepping up again"), "{notes}");
    }
}

/// Issue 10: a report whose policy_evaluated says DKIM failed while auth_results show the domain's
/// own signature passing is called a contradiction, not "signs with X, not X".
#[test]
fn a_self_contradicting_report_is_named_as_such() {
    let odd = Rec {
        ip: "192.0.2.99",
        count: 20,
        dkim: ("", "pass"),
        spf: ("", "fail"),
        aligned: (false, false),
        ..OWN
    };
    let (_, senders) = judge("odd.example", 14, NONE, &[OWN, odd], "");
    let row = sender(&senders, "odd.example");
    let reason = row["reason"].as_str().unwrap();
    assert!(
        reason.contains("the reports contradict themselves"),
        "{reason}"
    );
    assert!(reason.contains("reporter quirk"), "{reason}");
    assert!(!reason.contains("not odd.example"), "{reason}");
}

#[test]
fn at_reject_subdomains_are_protected_next() {
    let sub = Rec {
        header_from: "news.sub.example",
        ..OWN
    };
    let (advice, _) = judge("sub.example", 14, pol("reject"), &[OWN, sub], "");
    assert_eq!(advice["action"], "step up", "{advice:#}");
    assert_eq!(advice["recommended"]["p"], "reject");
    assert_eq!(advice["recommended"]["sp"], "reject");
    assert!(
        advice["record"]
            .as_str()
            .unwrap()
            .starts_with("v=DMARC1; p=reject; sp=reject;")
    );
}

#[test]
fn declared_senders_override_the_guess_and_reports_to_another_domain_are_flagged() {
    let crm = Rec {
        ip: "192.0.2.200",
        count: 20,
        dkim: ("", "none"),
        spf: ("", "fail"),
        aligned: (false, false),
        ..OWN
    };
    let config = r#"
[[sender]]
name = "Our CRM"
ips = ["192.0.2.192/26"]

[[sender]]
name = "Old newsletter tool"
ips = ["203.0.113.66"]
legitimate = false

[[domain]]
name = "decl.example"
rua = "mailto:reports@dmarc-service.example"
"#;
    let (advice, senders) = judge("decl.example", 14, NONE, &[OWN, crm, SPOOF], config);
    assert_eq!(sender(&senders, "Our CRM")["class"], "needs_fixing");
    assert!(
        sender(&senders, "Our CRM")["reason"]
            .as_str()
            .unwrap()
            .contains("SPF fails for decl.example"),
        "{senders:#?}"
    );
    assert_eq!(
        sender(&senders, "Old newsletter tool")["class"],
        "unauthorised"
    );
    assert_eq!(advice["blockers"][0]["sender"], "Our CRM");
    let notes = advice["notes"].to_string();
    assert!(
        notes.contains("decl.example._report._dmarc.dmarc-service.example"),
        "{notes}"
    );
    assert!(
        advice["record"]
            .as_str()
            .unwrap()
            .ends_with("rua=mailto:reports@dmarc-service.example")
    );
}

/// `--resolve` names a source that passes nothing by its reverse DNS (here 127.0.0.1 → localhost,
/// answered by the system resolver from /etc/hosts: no network), and caches the answer.
#[test]
fn resolve_names_unauthenticated_sources_by_reverse_dns() {
    let relay = Rec {
        ip: "127.0.0.1",
        count: 25,
        dkim: ("", "none"),
        spf: ("", "fail"),
        aligned: (false, false),
        ..OWN
    };
    let env = Env::new();
    let dir = env.dir.path().join("reports");
    reports(&dir, "rdns.example", 14, NONE, &[OWN, relay]);
    let config = env.dir.path().join("config.toml");
    std::fs::write(
        &config,
        "[[service]]\nname = \"Local relay\"\ndomains = [\"localhost\"]\n",
    )
    .unwrap();
    assert_eq!(env.run(&["ingest", "--quiet", s(&dir)]).code, 0);
    let c = s(&config);
    let plain = env
        .run(&["senders", "--config", c, "--format", "json"])
        .json();
    assert_eq!(sender(&plain, "unidentified")["class"], "unauthorised");
    for _ in 0..2 {
        // The second time the answer comes from the cache.
        let out = env.run(&["senders", "--resolve", "--config", c, "--format", "json"]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let resolved = out.json();
        let relay = sender(&resolved, "Local relay");
        assert_eq!(relay["class"], "needs_fixing", "{resolved:#?}");
        assert!(
            relay["reason"]
                .as_str()
                .unwrap()
                .contains("SPF fails for rdns.example"),
            "{relay}"
        );
    }
    let advice = env
        .run(&[
            "advise",
            "--offline",
            "--resolve",
            "--config",
            c,
            "--format",
            "json",
        ])
        .json();
    assert_eq!(advice[0]["blockers"][0]["sender"], "Local relay");
}
