//! `senders` and `advise` over generated reports, one scenario per case of issue 5: a clean domain
//! steps up; an unaligned ESP blocks; spoofing alone does not; forwarding does not block; too little
//! data keeps collecting; a tightening that hurts backs off; subdomains get sp=; the config's
//! declared senders override the guess.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use crate::cli::{Env, s};

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

/// A report by `org` for `domain` on `day` (days after 2026-10-01) under policy `p`/`pct`/`sp`.
pub(crate) fn report(
    org: &str,
    domain: &str,
    day: i64,
    policy: (&str, u32, Option<&str>),
    recs: &[Rec<'_>],
) -> String {
    let begin = 1_790_812_800 + day * 86_400;
    let (p, pct, sp) = policy;
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
    write!(xml, "<pct>{pct}</pct></policy_published>").unwrap();
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
fn reports(
    dir: &Path,
    domain: &str,
    days: i64,
    policy: (&str, u32, Option<&str>),
    recs: &[Rec<'_>],
) {
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

/// Ingests `recs` for `domain` and returns (`advise --format json`[0], `senders --format json`).
fn judge(
    domain: &str,
    days: i64,
    policy: (&str, u32, Option<&str>),
    recs: &[Rec<'_>],
    config: &str,
) -> (Value, Vec<Value>) {
    let env = Env::new();
    let dir = env.dir.path().join("reports");
    reports(&dir, domain, days, policy, recs);
    let config_path = env.dir.path().join("config.toml");
    std::fs::write(&config_path, config).unwrap();
    let out = env.run(&["ingest", "--quiet", s(&dir)]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let c = s(&config_path);
    let advice = env.run(&["advise", "--config", c, "--format", "json"]);
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

#[test]
fn a_clean_domain_steps_up_to_quarantine_pct_10() {
    let (advice, senders) = judge("clean.example", 14, ("none", 100, None), &[OWN, SPOOF], "");
    assert_eq!(advice["domain"], "clean.example");
    assert_eq!(advice["current"]["p"], "none");
    assert_eq!(advice["current"]["pct"], 100);
    assert_eq!(advice["ready"], true, "{advice:#}");
    assert_eq!(advice["recommended"]["p"], "quarantine");
    assert_eq!(advice["recommended"]["pct"], 10);
    assert_eq!(advice["recommended"]["sp"], "quarantine");
    assert_eq!(
        advice["record"],
        "v=DMARC1; p=quarantine; pct=10; sp=quarantine; np=quarantine; rua=mailto:dmarc@clean.example"
    );
    assert!(advice["blockers"].as_array().unwrap().is_empty());
    assert_eq!(sender(&senders, "clean.example")["class"], "aligned");
    // Spoofing is what the policy stops: it does not block the step.
    let spoof = sender(&senders, "unidentified");
    assert_eq!(spoof["class"], "unauthorised");
    assert_eq!(spoof["messages"], 14 * 2 * 15);
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
    let (advice, senders) = judge("esp.example", 14, ("none", 100, None), &[OWN, SENDGRID], "");
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
    let (advice, senders) = judge(
        "fwd.example",
        14,
        ("none", 100, None),
        &[OWN, list, forwarder],
        "",
    );
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
    let (advice, _) = judge("young.example", 3, ("none", 100, None), &[OWN], "");
    assert_eq!(advice["ready"], false);
    assert_eq!(advice["action"], "keep collecting");
    let notes = advice["notes"].to_string();
    assert!(notes.contains("4 more days of reports"), "{notes}");
    assert_eq!(advice["recommended"]["p"], "none");
}

#[test]
fn a_tightening_that_hurts_legitimate_mail_backs_off_first() {
    let quarantined = Rec {
        disposition: "quarantine",
        ..SENDGRID
    };
    let (advice, _) = judge(
        "hurt.example",
        14,
        ("quarantine", 50, None),
        &[OWN, quarantined],
        "",
    );
    assert_eq!(advice["action"], "back off");
    assert_eq!(advice["ready"], false);
    assert_eq!(advice["recommended"]["p"], "quarantine");
    assert_eq!(advice["recommended"]["pct"], 25);
    let first = advice["notes"][0].as_str().unwrap();
    assert!(
        first.starts_with("legitimate mail is being quarantined"),
        "{first}"
    );
}

#[test]
fn at_reject_subdomains_are_protected_next() {
    let sub = Rec {
        header_from: "news.sub.example",
        ..OWN
    };
    let (advice, _) = judge("sub.example", 14, ("reject", 100, None), &[OWN, sub], "");
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
    let (advice, senders) = judge(
        "decl.example",
        14,
        ("none", 100, None),
        &[OWN, crm, SPOOF],
        config,
    );
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
    reports(&dir, "rdns.example", 14, ("none", 100, None), &[OWN, relay]);
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
        .run(&["advise", "--resolve", "--config", c, "--format", "json"])
        .json();
    assert_eq!(advice[0]["blockers"][0]["sender"], "Local relay");
}
