//! HTTP: every request is authenticated (when a password is set), parsed within bounds, dispatched
//! to a page or the JSON API, and answered with security headers. Untrusted input never panics:
//! bad paths, queries and dates are 4xx answers.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use sha2::Digest;

use super::pages;
use super::{ServeConfig, Shared};
use crate::judge::Scope;
use crate::model::Filter;
use crate::store::Store;

/// Longest request target accepted.
const MAX_URL: usize = 4096;
/// Most query parameters read.
const MAX_PARAMS: usize = 32;
/// Most rows an API listing returns unless `limit` asks for fewer.
const MAX_ROWS: u64 = 100_000;

const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'none'; \
                   object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// An answer before headers.
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn html(status: u16, body: String) -> Answer {
        Answer {
            status,
            content_type: "text/html; charset=utf-8",
            body: body.into_bytes(),
        }
    }

    fn json<T: serde::Serialize>(value: &T) -> Answer {
        match serde_json::to_string_pretty(value) {
            Ok(mut text) => {
                text.push('\n');
                Answer {
                    status: 200,
                    content_type: "application/json",
                    body: text.into_bytes(),
                }
            }
            Err(e) => Answer::error(500, &format!("cannot write JSON: {e}")),
        }
    }

    pub fn error(status: u16, message: &str) -> Answer {
        Answer::html(status, pages::error(status, message))
    }
}

/// Every request: method, password and size checked, then answered by [`route`] on a blocking
/// thread with a read-only connection.
pub async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let method = request.method().clone();
    if method != Method::GET && method != Method::HEAD {
        return respond(Answer::error(405, "only GET and HEAD are served"));
    }
    if !authorised(request.headers(), &shared.config) {
        let mut response = respond(Answer::error(401, "a password is needed"));
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"dmarc-warden\", charset=\"UTF-8\""),
        );
        return response;
    }
    let url = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    if url.len() > MAX_URL {
        return respond(Answer::error(414, "the address is too long"));
    }
    let mut response = match shared.answer(url).await {
        Some(answer) => respond_with(&answer),
        None => respond(Answer::error(503, "the server is shutting down")),
    };
    if method == Method::HEAD {
        *response.body_mut() = Body::empty();
    }
    response
}

fn respond(answer: Answer) -> Response {
    respond_with(&answer)
}

fn respond_with(answer: &Answer) -> Response {
    let mut r = Response::new(Body::from(answer.body.clone()));
    *r.status_mut() =
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(answer.content_type),
    );
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    for (name, value) in [
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
    ] {
        h.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    r
}

/// With a password set: HTTP Basic credentials with that password (any user name). Compared as
/// SHA-256 digests, so the time taken does not tell how much of a guess was right.
fn authorised(headers: &axum::http::HeaderMap, config: &ServeConfig) -> bool {
    let Some(password) = &config.password else {
        return true;
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|value| {
            let value = value.trim();
            let (scheme, b64) = value.split_once(' ')?;
            if !scheme.eq_ignore_ascii_case("basic") || b64.len() > 1024 {
                return None;
            }
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()?;
            let text = String::from_utf8(decoded).ok()?;
            let (_, pass) = text.split_once(':')?;
            Some(pass.to_owned())
        });
    given.is_some_and(|g| {
        sha2::Sha256::digest(g.as_bytes()) == sha2::Sha256::digest(password.expose().as_bytes())
    })
}

/// The query's parameters (the first of each name).
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(query: &str) -> Params {
        let mut out: Vec<(String, String)> = Vec::new();
        for (k, v) in form_urlencoded::parse(query.as_bytes()).take(MAX_PARAMS) {
            if !out.iter().any(|(name, _)| *name == k) {
                out.push((k.into_owned(), v.into_owned()));
            }
        }
        Params(out)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }
}

/// What the page filter asks for: `from`/`to` (dates, both ends included), `days`, `domain`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct View {
    pub domain: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub days: Option<u32>,
}

impl View {
    fn parse(p: &Params, default_days: Option<u32>) -> Result<(View, Scope), String> {
        let domain = p.get("domain").map(domain_name).transpose()?;
        let since = p.get("from").map(day_start).transpose()?;
        let until = p
            .get("to")
            .map(day_start)
            .transpose()?
            .map(|t| t.saturating_add(crate::time::DAY));
        let days = match p.get("days") {
            Some(d) => Some(
                d.parse::<u32>()
                    .ok()
                    .filter(|d| *d <= 36_500)
                    .ok_or_else(|| format!("days {d:?}: expected a number of days"))?,
            ),
            None => None,
        };
        let view = View {
            domain: domain.clone(),
            from: p.get("from").map(str::to_owned),
            to: p.get("to").map(str::to_owned),
            days,
        };
        let days = days.map_or(default_days, |d| (d > 0).then_some(d));
        Ok((
            view,
            Scope {
                domain,
                days,
                since,
                until,
                by_day: false,
            },
        ))
    }

    /// The filter as a query string (`?from=…`), without `domain` (pages name their domain in
    /// the path), for links that keep it.
    pub fn query(&self) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if let Some(f) = &self.from {
            q.append_pair("from", f);
        }
        if let Some(t) = &self.to {
            q.append_pair("to", t);
        }
        if let Some(d) = self.days {
            q.append_pair("days", &d.to_string());
        }
        let q = q.finish();
        if q.is_empty() { q } else { format!("?{q}") }
    }
}

/// A date `YYYY-MM-DD` as the start of that day (UTC).
fn day_start(s: &str) -> Result<i64, String> {
    crate::time::parse_day(s).ok_or_else(|| format!("date {s:?}: expected YYYY-MM-DD"))
}

/// A policy domain in [`crate::domain::Domain`]'s normal form, as the CLI's `--domain` takes it.
fn domain_name(s: &str) -> Result<String, String> {
    crate::domain::Domain::parse_policy(s)
        .map(String::from)
        .map_err(|e| e.to_string())
}

/// A path segment, percent-decoded.
fn segment(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

pub fn route(store: &Store, config: &ServeConfig, url: &str) -> Answer {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let params = Params::parse(query);
    let parts: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .take(8)
        .map(segment)
        .collect();
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    match parts.as_slice() {
        ["static", "style.css"] => Answer {
            status: 200,
            content_type: "text/css; charset=utf-8",
            body: pages::STYLE.as_bytes().to_vec(),
        },
        ["static", "icon.svg"] => Answer {
            status: 200,
            content_type: "image/svg+xml",
            body: pages::ICON.as_bytes().to_vec(),
        },
        ["api", rest @ ..] => api(store, config, rest, &params),
        _ => page(store, config, &parts, &params),
    }
}

fn page(store: &Store, config: &ServeConfig, parts: &[&str], params: &Params) -> Answer {
    let (view, scope) = match View::parse(params, config.days) {
        Ok(v) => v,
        Err(e) => return Answer::error(400, &e),
    };
    let result = match parts {
        [] => pages::overview(store, config, &view, &scope),
        ["domain", d] => match domain_name(d) {
            Ok(d) => pages::domain(
                store,
                config,
                &view,
                &Scope {
                    domain: Some(d),
                    ..scope
                },
            ),
            Err(e) => return Answer::error(404, &e),
        },
        ["domain", d, "sender", name] => match domain_name(d) {
            Ok(d) => pages::sender(
                store,
                config,
                &view,
                &Scope {
                    domain: Some(d),
                    ..scope
                },
                name,
            ),
            Err(e) => return Answer::error(404, &e),
        },
        _ => return Answer::error(404, "no such page"),
    };
    match result {
        Ok(Some(html)) => Answer::html(200, html),
        Ok(None) => Answer::error(404, "nothing stored matches"),
        Err(e) => Answer::error(500, &e.to_string()),
    }
}

/// The listing filter of the CLI's `--domain`, `--since`, `--until` and `--limit`.
fn filter(p: &Params) -> Result<Filter, String> {
    let date = |name: &str| {
        p.get(name)
            .map(|v| crate::time::parse_date(v).map_err(|e| format!("{name} {e}")))
            .transpose()
    };
    let limit = match p.get("limit") {
        Some(l) => l
            .parse::<u64>()
            .map_err(|_| format!("limit {l:?}: expected a number"))?,
        None => MAX_ROWS,
    };
    Ok(Filter {
        domain: p.get("domain").map(domain_name).transpose()?,
        since: date("since")?,
        until: date("until")?,
        limit: Some(limit.min(MAX_ROWS)),
    })
}

fn api(store: &Store, config: &ServeConfig, parts: &[&str], p: &Params) -> Answer {
    let result = match parts {
        [] => {
            return Answer::json(&serde_json::json!({
                "endpoints": ["/api/domains", "/api/sources", "/api/reports", "/api/failures",
                              "/api/tls", "/api/senders", "/api/advise"],
            }));
        }
        ["domains"] => with_filter(p, |f| store.domains(&f).map(|r| Answer::json(&r))),
        ["sources"] => with_filter(p, |f| store.sources(&f).map(|r| Answer::json(&r))),
        ["reports"] => with_filter(p, |f| store.reports(&f).map(|r| Answer::json(&r))),
        ["tls"] => with_filter(p, |f| store.tls(&f).map(|r| Answer::json(&r))),
        ["failures"] => {
            let ip = p
                .get("source_ip")
                .map(crate::parse::aggregate::normalise_ip);
            with_filter(p, |f| {
                store.failures(&f, ip.as_deref()).map(|r| Answer::json(&r))
            })
        }
        ["senders"] | ["advise"] => {
            let scope = match judge_scope(p, config) {
                Ok(s) => s,
                Err(e) => return Answer::error(400, &e),
            };
            let senders = parts == ["senders"];
            let mut rows = Vec::new();
            let mut advice = Vec::new();
            let done = crate::judge::each_domain(
                store,
                &scope,
                &config.judgement,
                |_| Ok::<_, crate::store::StoreError>(crate::analyse::Names::new()),
                |judged| {
                    if senders {
                        rows.extend(judged.senders.into_iter().map(|s| s.summary));
                    } else {
                        advice.push(judged.advice(&config.judgement));
                    }
                    Ok(())
                },
            );
            done.map(|()| {
                if senders {
                    Answer::json(&rows)
                } else {
                    Answer::json(&advice)
                }
            })
        }
        _ => return Answer::error(404, "no such API endpoint; see /api/"),
    };
    result.unwrap_or_else(|e| Answer::error(500, &e.to_string()))
}

fn with_filter(
    p: &Params,
    query: impl FnOnce(Filter) -> Result<Answer, crate::store::StoreError>,
) -> Result<Answer, crate::store::StoreError> {
    match filter(p) {
        Ok(f) => query(f),
        Err(e) => Ok(Answer::error(400, &e)),
    }
}

/// `senders` / `advise`: `domain` and `days` as on the command line.
fn judge_scope(p: &Params, config: &ServeConfig) -> Result<Scope, String> {
    let days = match p.get("days") {
        Some(d) => {
            let d: u32 = d
                .parse()
                .map_err(|_| format!("days {d:?}: expected a number of days"))?;
            (d > 0).then_some(d)
        }
        None => config.days,
    };
    Ok(Scope {
        domain: p.get("domain").map(domain_name).transpose()?,
        days,
        ..Scope::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_is_parsed_within_bounds() {
        let p = Params::parse("from=2026-10-12&to=2026-10-13&domain=Example.COM&from=2020-01-01");
        let (view, scope) = View::parse(&p, Some(14)).unwrap();
        assert_eq!(view.query(), "?from=2026-10-12&to=2026-10-13");
        assert_eq!(scope.domain.as_deref(), Some("example.com"));
        assert_eq!(scope.since, Some(1_791_763_200));
        assert_eq!(scope.until, Some(1_791_763_200 + 2 * 86_400));
        assert_eq!(
            View::parse(&Params::parse("days=0"), Some(14))
                .unwrap()
                .1
                .days,
            None
        );
        for bad in [
            "from=yesterday",
            "days=-1",
            "days=99999999999",
            "domain=%3Cscript%3E",
        ] {
            assert!(View::parse(&Params::parse(bad), Some(14)).is_err(), "{bad}");
        }
        let many: String = (0..1000).map(|i| format!("k{i}=v&")).collect();
        assert_eq!(Params::parse(&many).0.len(), MAX_PARAMS);
    }

    #[test]
    fn domain_names_and_segments() {
        assert_eq!(
            domain_name("Mail.Example.org.").unwrap(),
            "mail.example.org"
        );
        assert!(domain_name("a/b").is_err());
        assert!(domain_name(&"a".repeat(300)).is_err());
        assert_eq!(segment("SendGrid%20%28x%29"), "SendGrid (x)");
        assert_eq!(segment("%ff"), "\u{fffd}");
    }
}
