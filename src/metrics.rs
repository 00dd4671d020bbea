//! Figures for Prometheus: the text exposition format (0.0.4) written by one encoder
//! ([`Exposition`]: `# HELP`, `# TYPE`, escaped labels), the process's own figures (CPU, memory,
//! file descriptors, start time, from `/proc`), and `fetch --metrics-file` ([`FetchRun`]): a run's
//! figures in the node_exporter textfile format, written to a temporary file and renamed over the
//! old one so that a scrape never sees half a file. `serve`'s `/metrics` is gathered in
//! `web/metrics.rs`.
//!
//! Names follow Prometheus's conventions: `dmarc_warden_…`, base units (seconds, bytes, ratios
//! from 0 to 1), `_total` for counters; labels are bounded (domains, reporters, classes, severities,
//! accounts; never an IP address, a sender or a report id).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

/// A family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

/// One metric family and its samples.
#[derive(Debug)]
pub struct Family {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

impl Family {
    /// Adds a sample with these labels.
    pub fn sample(&mut self, labels: &[(&'static str, &str)], value: f64) -> &mut Family {
        self.samples.push((
            labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
            value,
        ));
        self
    }
}

/// Metric families in the order they were added, written as the text format.
#[derive(Debug, Default)]
pub struct Exposition {
    families: Vec<Family>,
}

impl Exposition {
    /// A new family (to add samples to). A family added twice keeps one `# HELP`/`# TYPE`.
    pub fn family(&mut self, name: &'static str, kind: Kind, help: &'static str) -> &mut Family {
        let at = match self.families.iter().position(|f| f.name == name) {
            Some(at) => at,
            None => {
                self.families.push(Family {
                    name,
                    help,
                    kind,
                    samples: Vec::new(),
                });
                self.families.len() - 1
            }
        };
        &mut self.families[at]
    }

    /// The text format; families without samples are left out.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for f in self.families.iter().filter(|f| !f.samples.is_empty()) {
            let _ = writeln!(out, "# HELP {} {}", f.name, escape_help(f.help));
            let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind.as_str());
            for (labels, value) in &f.samples {
                out.push_str(f.name);
                if !labels.is_empty() {
                    out.push('{');
                    for (i, (k, v)) in labels.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        let _ = write!(out, "{k}=\"{}\"", escape_label(v));
                    }
                    out.push('}');
                }
                let _ = writeln!(out, " {}", number(*value));
            }
        }
        out
    }
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A sample value: integers without a fraction, `NaN`, `+Inf`, `-Inf`.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        // Nine decimals: no float noise (0.796, not 0.7959999999999999).
        format!("{}", (v * 1e9).round() / 1e9)
    }
}

/// Seconds since the epoch.
pub fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The process's figures under the names every Prometheus client library uses (`process_…`), where
/// the system tells them (Linux `/proc`); and `dmarc_warden_build_info`.
pub fn process(m: &mut Exposition) {
    m.family(
        "dmarc_warden_build_info",
        Kind::Gauge,
        "Always 1; the version of dmarc-warden running.",
    )
    .sample(&[("version", env!("CARGO_PKG_VERSION"))], 1.0);
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // Linux reports these in USER_HZ, 100 on every architecture it runs on.
    const TICKS: f64 = 100.0;
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<f64>().ok());
    if let (Some(utime), Some(stime)) = (field(14), field(15)) {
        m.family(
            "process_cpu_seconds_total",
            Kind::Counter,
            "Total user and system CPU time spent in seconds.",
        )
        .sample(&[], (utime + stime) / TICKS);
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map(|k| k * 1024.0)
    };
    if let Some(rss) = kib("VmRSS:") {
        m.family(
            "process_resident_memory_bytes",
            Kind::Gauge,
            "Resident memory size in bytes.",
        )
        .sample(&[], rss);
    }
    if let Some(vsize) = kib("VmSize:") {
        m.family(
            "process_virtual_memory_bytes",
            Kind::Gauge,
            "Virtual memory size in bytes.",
        )
        .sample(&[], vsize);
    }
    let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<f64>().ok())
    });
    if let (Some(boot), Some(start)) = (boot, field(22)) {
        m.family(
            "process_start_time_seconds",
            Kind::Gauge,
            "Start time of the process since unix epoch in seconds.",
        )
        .sample(&[], boot + start / TICKS);
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        m.family(
            "process_open_fds",
            Kind::Gauge,
            "Number of open file descriptors.",
        )
        .sample(&[], fds.count() as f64);
    }
    let max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Max open files"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        });
    if let Some(max) = max_fds {
        m.family(
            "process_max_fds",
            Kind::Gauge,
            "Maximum number of open file descriptors.",
        )
        .sample(&[], max);
    }
}

/// Writes `text` to `path` through a temporary file beside it (a name node_exporter skips), synced
/// and renamed over the old file, so that a reader sees the old file or the new one, never a part.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(text.as_bytes())?;
        // node_exporter runs as another user: the figures are readable by all (they hold no secret).
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        }
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// A sample's value in a textfile written before: the line `name{labels} value` (labels exactly
/// as this module writes them).
fn previous(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let (head, value) = l.rsplit_once(' ')?;
        (head == series).then(|| value.parse().ok()).flatten()
    })
}

/// One account's outcome in a `fetch` run.
#[derive(Debug, Clone)]
struct AccountRun {
    name: String,
    /// `None`: the account failed (connection, TLS, login, database).
    stats: Option<crate::pipeline::Stats>,
}

/// `fetch --metrics-file`: the run's figures, per account, written when the run ends; by
/// [`FetchRun::finish`], or when dropped (a run that stopped early: every account not reported
/// counts as failed).
#[derive(Debug)]
pub struct FetchRun {
    path: Option<PathBuf>,
    accounts: Vec<String>,
    done: Vec<AccountRun>,
    started: SystemTime,
    clock: Instant,
    written: bool,
}

impl FetchRun {
    /// A run over `accounts` that writes its figures to `path` (nothing when `None`).
    pub fn start(path: Option<PathBuf>, accounts: Vec<String>) -> FetchRun {
        FetchRun {
            path,
            accounts,
            done: Vec::new(),
            started: SystemTime::now(),
            clock: Instant::now(),
            written: false,
        }
    }

    /// An account was read through; `None`: it failed.
    pub fn account(&mut self, name: &str, stats: Option<&crate::pipeline::Stats>) {
        self.done.push(AccountRun {
            name: name.to_owned(),
            stats: stats.cloned(),
        });
    }

    /// Writes the figures now; a file that cannot be written is said on stderr (the run's own
    /// outcome stands, and the stale file's last success time tells the monitoring).
    pub fn finish(mut self) {
        self.write();
    }

    fn write(&mut self) {
        if self.written {
            return;
        }
        self.written = true;
        let Some(path) = &self.path else { return };
        let before = std::fs::read_to_string(path).unwrap_or_default();
        let text = self.render(&before);
        if let Err(e) = write_atomically(path, &text) {
            eprintln!(
                "dmarc-warden: error: cannot write the metrics file {}: {e}",
                path.display()
            );
        }
    }

    /// The textfile; `before` is the file as the last run left it (for the last success of an
    /// account that failed now).
    fn render(&self, before: &str) -> String {
        let end = self.started + self.clock.elapsed();
        let mut m = Exposition::default();
        let mut all_ok = !self.accounts.is_empty();
        for name in &self.accounts {
            let run = self.done.iter().find(|a| a.name == *name);
            let stats = run.and_then(|a| a.stats.as_ref());
            all_ok &= stats.is_some();
            let label = [("account", name.as_str())];
            m.family(
                "dmarc_warden_fetch_success",
                Kind::Gauge,
                "1 when the last fetch read the account through, 0 when it failed.",
            )
            .sample(&label, if stats.is_some() { 1.0 } else { 0.0 });
            let series = format!(
                "dmarc_warden_fetch_last_success_timestamp_seconds{{account=\"{}\"}}",
                escape_label(name)
            );
            let last = match stats {
                Some(_) => Some(unix_seconds(end)),
                None => previous(before, &series),
            };
            if let Some(t) = last {
                m.family(
                    "dmarc_warden_fetch_last_success_timestamp_seconds",
                    Kind::Gauge,
                    "When a fetch last read the account through, in seconds since the epoch.",
                )
                .sample(&label, t.round());
            }
            if let Some(s) = stats {
                m.family(
                    "dmarc_warden_fetch_messages",
                    Kind::Gauge,
                    "Messages the last fetch read from the account.",
                )
                .sample(&label, s.inputs as f64);
                m.family(
                    "dmarc_warden_fetch_reports_stored",
                    Kind::Gauge,
                    "Reports (aggregate, failure, TLS) the last fetch stored that were not stored before.",
                )
                .sample(&label, s.reports_new as f64);
                m.family(
                    "dmarc_warden_fetch_duplicates",
                    Kind::Gauge,
                    "Reports the last fetch found already stored.",
                )
                .sample(&label, s.duplicates as f64);
                m.family(
                    "dmarc_warden_fetch_rejects",
                    Kind::Gauge,
                    "Messages of the last fetch with a part that was rejected (kept; see `dmarc-warden rejects`).",
                )
                .sample(&label, s.rejected as f64);
            }
        }
        m.family(
            "dmarc_warden_fetch_last_run_timestamp_seconds",
            Kind::Gauge,
            "When the last fetch ended, in seconds since the epoch.",
        )
        .sample(&[], unix_seconds(end).round());
        m.family(
            "dmarc_warden_fetch_duration_seconds",
            Kind::Gauge,
            "How long the last fetch took, in seconds.",
        )
        .sample(
            &[],
            (self.clock.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        );
        m.family(
            "dmarc_warden_fetch_ok",
            Kind::Gauge,
            "1 when the last fetch read every account through, else 0.",
        )
        .sample(&[], if all_ok { 1.0 } else { 0.0 });
        m.render()
    }
}

impl Drop for FetchRun {
    fn drop(&mut self) {
        self.write();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_format_escapes_and_groups() {
        let mut m = Exposition::default();
        m.family("x_total", Kind::Counter, "Things\\counted.\nTwice.")
            .sample(&[("domain", "a\"b\\c\nd")], 3.0)
            .sample(&[("domain", "e")], 0.5);
        m.family("y", Kind::Gauge, "Nothing.");
        m.family("x_total", Kind::Counter, "ignored")
            .sample(&[], f64::NAN);
        assert_eq!(
            m.render(),
            "# HELP x_total Things\\\\counted.\\nTwice.\n# TYPE x_total counter\n\
             x_total{domain=\"a\\\"b\\\\c\\nd\"} 3\nx_total{domain=\"e\"} 0.5\nx_total NaN\n"
        );
    }

    #[test]
    fn a_failed_account_keeps_its_last_success() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fetch.prom");
        let mut run = FetchRun::start(Some(path.clone()), vec!["a".into(), "b".into()]);
        let stats = crate::pipeline::Stats {
            inputs: 7,
            reports_new: 5,
            rejected: 1,
            ..Default::default()
        };
        run.account("a", Some(&stats));
        run.account("b", Some(&stats));
        run.finish();
        let first = std::fs::read_to_string(&path).unwrap();
        assert!(
            first.contains("dmarc_warden_fetch_messages{account=\"a\"} 7"),
            "{first}"
        );
        assert!(first.contains("dmarc_warden_fetch_ok 1"), "{first}");
        let series = "dmarc_warden_fetch_last_success_timestamp_seconds{account=\"b\"}";
        let success = previous(&first, series).unwrap();
        // The next run stops after account a: b counts as failed, with its old last success.
        let mut run = FetchRun::start(Some(path.clone()), vec!["a".into(), "b".into()]);
        run.account("a", Some(&stats));
        drop(run);
        let second = std::fs::read_to_string(&path).unwrap();
        assert!(
            second.contains("dmarc_warden_fetch_success{account=\"b\"} 0"),
            "{second}"
        );
        assert!(second.contains("dmarc_warden_fetch_ok 0"), "{second}");
        assert_eq!(previous(&second, series), Some(success));
        assert!(!second.contains("dmarc_warden_fetch_messages{account=\"b\"}"));
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "a temporary file was left"
        );
    }
}
