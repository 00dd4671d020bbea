//! HTTP: every request is authenticated (when a password or users are set), parsed within bounds,
//! dispatched to a page, the JSON API or `/metrics` within what the user may see, and answered with
//! security headers. Untrusted input never panics: bad paths, queries and dates are 4xx answers. A
//! domain outside the user's scope is answered as one that is not stored (404, empty listings).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use sha2::Digest;

use super::pages;
use super::{ServeConfig, Shared};
use crate::access::Visible;
use crate::judge::Scope;
use crate::model::Filter;
use crate::store::{Detail, Store};

/// What a page of a domain that is not stored, or not the user's, says.
const NOTHING: &str = "nothing stored matches";

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
    let Some(visible) = login(&shared, request.headers()).await else {
        let mut response = respond(Answer::error(401, "a password is needed"));
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"dmarc-warden\", charset=\"UTF-8\""),
        );
        return response;
    };
    let url = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    if url.len() > MAX_URL {
        return respond(Answer::error(414, "the address is too long"));
    }
    let path = url.split_once('?').map_or(url.as_str(), |(p, _)| p);
    let metrics = path.trim_end_matches('/') == "/metrics";
    let mut response = match shared.answer(url, visible).await {
        // The process's figures are the moment's, never cached.
        Some(answer) if metrics && answer.status == 200 => {
            let mut m = crate::metrics::Exposition::default();
            crate::metrics::process(&mut m);
            let mut body = answer.body.clone();
            body.extend_from_slice(m.render().as_bytes());
            respond(Answer { body, ..*answer })
        }
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

/// Who may see what: with `--htpasswd`, the scope of the user whose bcrypt password the HTTP Basic
/// credentials carry (checked on a blocking thread, a few at a time); with a password, every
/// domain for that password (any user name); without either, every domain. `None`: refused.
async fn login(shared: &Arc<Shared>, headers: &axum::http::HeaderMap) -> Option<Visible> {
    let config = &shared.config;
    if let Some(users) = &config.users {
        let (user, password) = basic(headers)?;
        let _permit = shared.verifying.acquire().await.ok()?;
        let users = Arc::clone(users);
        return tokio::task::spawn_blocking(move || users.check(&user, &password))
            .await
            .ok()
            .flatten();
    }
    authorised(headers, config).then_some(Visible::All)
}

/// HTTP Basic credentials: user name and password.
fn basic(headers: &axum::http::HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, b64) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") || b64.len() > 1024 {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_owned(), pass.to_owned()))
}

/// With a password set: HTTP Basic credentials with that password (any user name). Compared as
/// SHA-256 digests, so the time taken does not tell how much of a guess was right.
fn authorised(headers: &axum::http::HeaderMap, config: &ServeConfig) -> bool {
    let Some(password) = &config.password else {
        return true;
    };
    basic(headers).is_some_and(|(_, g)| {
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
                detail: Detail::Days,
                per_ip: false,
                visible: Visible::All,
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

/// The answer to `url` for a user who sees `visible`.
pub fn route(store: &Store, config: &ServeConfig, visible: &Visible, url: &str) -> Answer {
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
        ["api", rest @ ..] => api(store, config, visible, rest, &params),
        ["metrics"] => match super::metrics::render(store, config, visible) {
            Ok(text) => Answer {
                status: 200,
                content_type: super::metrics::CONTENT_TYPE,
                body: text.into_bytes(),
            },
            Err(e) => Answer::error(500, &e.to_string()),
        },
        _ => page(store, config, visible, &parts, &params),
    }
}

fn page(
    store: &Store,
    config: &ServeConfig,
    visible: &Visible,
    parts: &[&str],
    params: &Params,
) -> Answer {
    let (view, scope) = match View::parse(params, config.days) {
        Ok((view, scope)) => (
            view,
            Scope {
                visible: visible.clone(),
                ..scope
            },
        ),
        Err(e) => return Answer::error(400, &e),
    };
    // Another user's domain is answered as one that is not stored.
    if let ["domain", d, ..] = parts
        && domain_name(d).is_ok_and(|d| !visible.allows(&d))
    {
        return Answer::error(404, NOTHING);
    }
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
        Ok(None) => Answer::error(404, NOTHING),
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

fn api(
    store: &Store,
    config: &ServeConfig,
    visible: &Visible,
    parts: &[&str],
    p: &Params,
) -> Answer {
    let result = match parts {
        [] => {
            return Answer::json(&serde_json::json!({
                "endpoints": ["/api/domains", "/api/sources", "/api/reports", "/api/failures",
                              "/api/tls", "/api/senders", "/api/advise"],
            }));
        }
        ["domains"] => with_filter(p, |f| {
            scoped(store, visible, f, |f| store.domains(f)).map(|r| Answer::json(&r))
        }),
        ["sources"] => with_filter(p, |f| {
            scoped(store, visible, f, |f| store.sources(f)).map(|r| Answer::json(&r))
        }),
        ["reports"] => with_filter(p, |f| {
            scoped(store, visible, f, |f| store.reports(f)).map(|r| Answer::json(&r))
        }),
        ["tls"] => with_filter(p, |f| {
            scoped(store, visible, f, |f| store.tls(f)).map(|r| Answer::json(&r))
        }),
        ["failures"] => {
            let ip = p
                .get("source_ip")
                .map(crate::parse::aggregate::normalise_ip);
            with_filter(p, |f| {
                scoped(store, visible, f, |f| store.failures(f, ip.as_deref()))
                    .map(|r| Answer::json(&r))
            })
        }
        ["senders"] | ["advise"] => {
            let scope = match judge_scope(p, config, visible) {
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

/// A listing as a user who sees `visible` gets it: all of it, or the rows of their domains only,
/// domain by domain (each in the listing's order), at most the filter's `limit` in all.
fn scoped<T>(
    store: &Store,
    visible: &Visible,
    f: Filter,
    query: impl Fn(&Filter) -> Result<Vec<T>, crate::store::StoreError>,
) -> Result<Vec<T>, crate::store::StoreError> {
    if *visible == Visible::All {
        return query(&f);
    }
    let domains = match &f.domain {
        Some(d) => vec![d.clone()],
        None => store.stored_domains()?,
    };
    let mut left = f.limit.unwrap_or(MAX_ROWS);
    let mut out = Vec::new();
    for d in domains.into_iter().filter(|d| visible.allows(d)) {
        if left == 0 {
            break;
        }
        let rows = query(&Filter {
            domain: Some(d),
            limit: Some(left),
            ..f.clone()
        })?;
        left = left.saturating_sub(rows.len() as u64);
        out.extend(rows);
    }
    Ok(out)
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
fn judge_scope(p: &Params, config: &ServeConfig, visible: &Visible) -> Result<Scope, String> {
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
        visible: visible.clone(),
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
