//! SVG charts drawn on the server: daily volume as stacked bars, the DMARC pass rate as a line, a
//! sparkline, and one bar of volume by sender class. Plain SVG inside the page, so they need no
//! script, work offline and print. Classes are told apart by pattern and label as well as colour
//! (the patterns are defined once per page by [`defs`]).

use maud::{Markup, html};

use super::data::Day;
use crate::model::SenderClass;

const W: f64 = 720.0;
const H: f64 = 240.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 30.0;

/// The four class patterns (solid; stripes; dots; cross-hatch), referenced as `url(#pat-N)`.
/// Put once into every page that has charts.
pub fn defs() -> Markup {
    html! {
        svg class="defs" width="0" height="0" aria-hidden="true" focusable="false" {
            defs {
                pattern id="pat-0" width="8" height="8" patternUnits="userSpaceOnUse" {
                    rect width="8" height="8" fill="#0072b2" {}
                }
                pattern id="pat-1" width="8" height="8" patternUnits="userSpaceOnUse"
                    patternTransform="rotate(45)" {
                    rect width="8" height="8" fill="#e69f00" {}
                    rect width="3" height="8" fill="#7a4f00" {}
                }
                pattern id="pat-2" width="6" height="6" patternUnits="userSpaceOnUse" {
                    rect width="6" height="6" fill="#c8c8c8" {}
                    circle cx="3" cy="3" r="1.4" fill="#444" {}
                }
                pattern id="pat-3" width="8" height="8" patternUnits="userSpaceOnUse" {
                    rect width="8" height="8" fill="#d55e00" {}
                    path d="M0 0L8 8M8 0L0 8" stroke="#fff" stroke-width="1.5" {}
                }
            }
        }
    }
}

/// A small square of a class's pattern, for legends.
pub fn swatch(class: usize) -> Markup {
    html! {
        svg class="swatch" width="14" height="14" viewBox="0 0 14 14" aria-hidden="true" {
            rect width="14" height="14" fill=(format!("url(#pat-{class})")) stroke="#333" stroke-width="1" {}
        }
    }
}

/// The legend of the class patterns.
pub fn legend() -> Markup {
    html! {
        ul class="legend" {
            @for class in SenderClass::ALL {
                li { (swatch(class.index())) " " (class.label()) }
            }
        }
    }
}

/// A round upper bound for an axis: 1, 2 or 5 times a power of ten.
fn nice(max: u64) -> u64 {
    let mut step = 1u64;
    loop {
        for m in [1, 2, 5] {
            let v = step.saturating_mul(m);
            if v >= max || v == u64::MAX {
                return v.max(1);
            }
        }
        step = step.saturating_mul(10);
    }
}

/// `1234567` → `1.2M`, `12345` → `12k`.
pub fn short(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..10_000 => format!("{:.1}k", n as f64 / 1e3),
        10_000..1_000_000 => format!("{}k", n / 1_000),
        _ => format!("{:.1}M", n as f64 / 1e6),
    }
}

/// `1234567` → `1,234,567`, as the tables write counts.
pub fn thousands(n: u64) -> String {
    crate::present::format::count(n)
}

/// A day number (since the epoch) as `2026-11-01`.
pub fn date(day: i64) -> String {
    crate::time::format_day(day.saturating_mul(crate::time::DAY)).unwrap_or_default()
}

fn short_date(day: i64) -> String {
    crate::time::format_short_day(day.saturating_mul(crate::time::DAY)).unwrap_or_default()
}

/// Indices of at most `n` evenly spaced x labels.
fn label_positions(len: usize, n: usize) -> Vec<usize> {
    if len == 0 {
        return Vec::new();
    }
    let step = len.div_ceil(n).max(1);
    let mut out: Vec<usize> = (0..len).step_by(step).collect();
    if out.last() != Some(&(len - 1)) && len - 1 - out.last().copied().unwrap_or(0) >= step / 2 {
        out.push(len - 1);
    }
    out
}

/// Daily messages as bars stacked by sender class, each bar with a tooltip of its figures.
pub fn volume(days: &[Day], title: &str) -> Markup {
    let max = nice(days.iter().map(Day::messages).max().unwrap_or(0));
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let slot = pw / days.len().max(1) as f64;
    let bar = (slot * 0.8).clamp(1.0, 48.0);
    let y = |v: u64| TOP + ph - (v as f64 / max as f64) * ph;
    html! {
        svg class="chart" viewBox=(format!("0 0 {W} {H}")) role="img" aria-label=(title)
            preserveAspectRatio="xMidYMid meet" {
            title { (title) }
            @for t in [0, max / 2, max] {
                line x1=(LEFT) x2=(W - RIGHT) y1=(y(t)) y2=(y(t)) class="grid" {}
                text x=(LEFT - 6.0) y=(y(t) + 4.0) text-anchor="end" class="tick" { (short(t)) }
            }
            @for (i, d) in days.iter().enumerate() {
                g class="bar" {
                    title { (day_tooltip(d)) }
                    @let x = LEFT + i as f64 * slot + (slot - bar) / 2.0;
                    @let mut base = 0u64;
                    @for (c, n) in d.by_class.iter().enumerate() {
                        @if *n > 0 {
                            @let top = base + n;
                            rect x=(format!("{x:.2}")) y=(format!("{:.2}", y(top)))
                                width=(format!("{bar:.2}"))
                                height=(format!("{:.2}", (y(base) - y(top)).max(0.5)))
                                fill=(format!("url(#pat-{c})")) stroke="#fff" stroke-width="0.5" {}
                            ({ base = top; "" })
                        }
                    }
                }
            }
            line x1=(LEFT) x2=(W - RIGHT) y1=(TOP + ph) y2=(TOP + ph) class="axis" {}
            @for i in label_positions(days.len(), 6) {
                @if let Some(d) = days.get(i) {
                    text x=(format!("{:.1}", LEFT + (i as f64 + 0.5) * slot)) y=(H - 10.0)
                        text-anchor="middle" class="tick" { (short_date(d.day)) }
                }
            }
        }
    }
}

fn day_tooltip(d: &Day) -> String {
    let parts: Vec<String> = SenderClass::ALL
        .iter()
        .zip(d.by_class)
        .map(|(class, n)| format!("{} {}", class.label(), thousands(n)))
        .collect();
    format!(
        "{}: {} messages, {} pass DMARC ({}); {}",
        date(d.day),
        thousands(d.messages()),
        thousands(d.pass),
        d.pass_pct()
            .map_or("no mail".to_owned(), |p| format!("{p:.1}%")),
        parts.join(", ")
    )
}

/// The daily DMARC pass rate (0–100 %) as a line with a marker per day; days without mail leave
/// a gap.
pub fn pass_rate(days: &[Day], title: &str) -> Markup {
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let slot = pw / days.len().max(1) as f64;
    let x = |i: usize| LEFT + (i as f64 + 0.5) * slot;
    let y = |p: f64| TOP + ph - p / 100.0 * ph;
    // Runs of consecutive days with mail, each drawn as one polyline.
    let mut runs: Vec<Vec<(usize, f64)>> = Vec::new();
    let mut run = Vec::new();
    for (i, d) in days.iter().enumerate() {
        match d.pass_pct() {
            Some(p) => run.push((i, p)),
            None if !run.is_empty() => runs.push(std::mem::take(&mut run)),
            None => {}
        }
    }
    if !run.is_empty() {
        runs.push(run);
    }
    let last = days
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, d)| Some((i, d.pass_pct()?)));
    let markers = days.len() <= 120;
    html! {
        svg class="chart" viewBox=(format!("0 0 {W} {H}")) role="img" aria-label=(title)
            preserveAspectRatio="xMidYMid meet" {
            title { (title) }
            @for t in [0.0, 25.0, 50.0, 75.0, 100.0] {
                line x1=(LEFT) x2=(W - RIGHT) y1=(y(t)) y2=(y(t)) class="grid" {}
                text x=(LEFT - 6.0) y=(y(t) + 4.0) text-anchor="end" class="tick" { (t) "%" }
            }
            @for r in &runs {
                polyline class="rate" fill="none" points=(r.iter().map(|(i, p)| format!("{:.1},{:.1}", x(*i), y(*p))).collect::<Vec<_>>().join(" ")) {}
            }
            @if markers {
                @for (i, d) in days.iter().enumerate() {
                    @if let Some(p) = d.pass_pct() {
                        circle class="point" cx=(format!("{:.1}", x(i))) cy=(format!("{:.1}", y(p))) r="3.5" {
                            title { (date(d.day)) ": " (format!("{p:.1}")) "% of " (thousands(d.messages())) " messages pass DMARC" }
                        }
                    }
                }
            }
            @if let Some((i, p)) = last {
                text x=(format!("{:.1}", x(i).min(W - RIGHT - 4.0))) y=(format!("{:.1}", (y(p) - 9.0).max(TOP + 10.0)))
                    text-anchor="end" class="value" { (format!("{p:.1}")) "%" }
            }
            line x1=(LEFT) x2=(W - RIGHT) y1=(TOP + ph) y2=(TOP + ph) class="axis" {}
            @for i in label_positions(days.len(), 6) {
                @if let Some(d) = days.get(i) {
                    text x=(format!("{:.1}", x(i))) y=(H - 10.0) text-anchor="middle" class="tick" { (short_date(d.day)) }
                }
            }
        }
    }
}

/// A small line of the daily pass rate, for the overview table.
pub fn sparkline(days: &[Day]) -> Markup {
    const SW: f64 = 110.0;
    const SH: f64 = 26.0;
    let points: Vec<(usize, f64)> = days
        .iter()
        .enumerate()
        .filter_map(|(i, d)| Some((i, d.pass_pct()?)))
        .collect();
    let n = days.len().max(2) - 1;
    // From the nearest ten below the lowest rate to 100 %, so that a trend within a few points
    // shows.
    let low = points.iter().map(|(_, p)| *p).fold(100.0_f64, f64::min);
    let low = ((low / 10.0).floor() * 10.0).min(90.0);
    let x = |i: usize| 2.0 + i as f64 / n as f64 * (SW - 4.0);
    let y = |p: f64| 2.0 + (100.0 - p) / (100.0 - low) * (SH - 4.0);
    let label = match (points.first(), points.last()) {
        (Some((_, a)), Some((_, b))) => {
            format!("daily pass rate from {a:.1}% to {b:.1}% (scale {low:.0}–100%)")
        }
        _ => "no mail".to_owned(),
    };
    html! {
        svg class="spark" width=(SW) height=(SH) viewBox=(format!("0 0 {SW} {SH}")) role="img" aria-label=(label) {
            title { (label) }
            line x1="0" x2=(SW) y1=(y(100.0)) y2=(y(100.0)) class="grid" {}
            polyline class="rate" fill="none" points=(points.iter().map(|(i, p)| format!("{:.1},{:.1}", x(*i), y(*p))).collect::<Vec<_>>().join(" ")) {}
            @if let Some((i, p)) = points.last() {
                circle class="point" cx=(format!("{:.1}", x(*i))) cy=(format!("{:.1}", y(*p))) r="2.5" {}
            }
        }
    }
}

/// Volume by sender class as one horizontal bar, each part labelled with its share.
pub fn class_bar(totals: &[u64; 4]) -> Markup {
    const BW: f64 = 720.0;
    const BH: f64 = 34.0;
    let all: u64 = totals.iter().sum();
    let mut x = 0.0;
    html! {
        svg class="chart classbar" viewBox=(format!("0 0 {BW} {BH}")) role="img" aria-label="messages by sender class" {
            title { "messages by sender class" }
            @for (c, n) in totals.iter().enumerate() {
                @if *n > 0 && all > 0 {
                    @let w = *n as f64 / all as f64 * BW;
                    rect x=(format!("{x:.2}")) y="0" width=(format!("{w:.2}")) height=(BH) fill=(format!("url(#pat-{c})")) stroke="#fff" stroke-width="1" {
                        title { (SenderClass::ALL[c].label()) ": " (thousands(*n)) " messages (" (format!("{:.1}", *n as f64 * 100.0 / all as f64)) "%)" }
                    }
                    @if w > 60.0 {
                        text x=(format!("{:.1}", x + w / 2.0)) y="22" text-anchor="middle" class="onbar" {
                            (format!("{:.0}", *n as f64 * 100.0 / all as f64)) "%"
                        }
                    }
                    ({ x += w; "" })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(12), "12");
        assert_eq!(short(12_345), "12k");
        assert_eq!(nice(0), 1);
        assert_eq!(nice(130), 200);
        assert_eq!(nice(u64::MAX), u64::MAX);
        assert_eq!(date(20_393), "2025-11-01");
    }
}
