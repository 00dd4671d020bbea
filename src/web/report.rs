//! `report --html FILE`: every domain (or one; with `--user`, those that dashboard user sees)
//! judged over its window, written as one self-contained HTML file with the dashboard's charts and
//! style inline.

use crate::judge::Scope;
use crate::store::Store;

use super::{ReportConfig, WebError, data, pages};

/// Writes the report to `config.file`.
pub fn write(store: &Store, config: &ReportConfig) -> Result<(), WebError> {
    let scope = Scope {
        domain: config.domain.clone(),
        days: config.days,
        visible: config.visible.clone(),
        ..Scope::default()
    };
    let views = data::domains(store, &scope, &config.judgement)?;
    let text = match config.days {
        Some(d) => format!("The {d} days before each domain's latest report"),
        None => "All stored reports".to_owned(),
    };
    let generated = crate::time::format_minute(crate::time::now())
        .map(|t| format!("{t} UTC"))
        .unwrap_or_default();
    let html = pages::report(&views, &text, &generated);
    std::fs::write(&config.file, html).map_err(|source| WebError::Write {
        path: config.file.clone(),
        source,
    })
}
