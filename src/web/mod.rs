//! Web outputs: `serve`, a read-only dashboard over the database with a JSON API, and
//! `report --html`, the same pages' charts in one self-contained file. Both read through `store`
//! and judge through [`crate::judge`] / `analyse`; nothing here re-implements a judgement.
//!
//! - `routes.rs` — HTTP: authentication, bounded request parsing, dispatch, security headers.
//! - `users.rs` — users from an htpasswd file and the domains each sees (`[web.scopes]`).
//! - `metrics.rs` — `/metrics` for Prometheus, within the user's scope.
//! - `data.rs` — view models: each domain judged, daily volume by sender class, a sender's IPs.
//! - `pages.rs` — the HTML pages (maud templates).
//! - `charts.rs` — SVG charts drawn on the server.
//! - `report.rs` — the one-file HTML report.
//! - `assets/` — the style sheet and icon, compiled into the binary.
//!
//! The server is axum on a small tokio runtime: hyper parses HTTP within bounds (header size,
//! pipelining), and each request's SQLite reads run on a blocking thread that borrows one of
//! `--threads` read-only connections.

pub mod charts;
pub mod data;
pub mod metrics;
pub mod pages;
pub mod report;
pub mod routes;
pub mod users;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::access::Visible;
use crate::judge::Judgement;
use crate::lock;
use crate::secret::Secret;
use crate::store::{ChangeToken, Location, Open, Store, StoreError};

/// Validated `serve` settings.
#[derive(Debug)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    /// HTTP Basic password; `None` only on loopback or with the explicit opt-out.
    pub password: Option<Secret>,
    /// `--htpasswd`: users, each seeing the domains of their scope (instead of `password`).
    pub users: Option<Arc<users::Users>>,
    pub judgement: Judgement,
    /// Days judged by default, back from each domain's latest report; `None` for all.
    pub days: Option<u32>,
    pub threads: usize,
}

/// Validated `report --html` settings.
#[derive(Debug)]
pub struct ReportConfig {
    pub file: PathBuf,
    pub domain: Option<String>,
    pub days: Option<u32>,
    pub judgement: Judgement,
    /// `--user`: only what that dashboard user sees.
    pub visible: Visible,
}

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: SocketAddr, reason: String },
    #[error("cannot write the report {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How often the server checks whether the database changed, and renders the overview again if so.
const WARM_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// Most pages kept in the cache; it is emptied when full.
const CACHE_PAGES: usize = 256;

/// What every request handler shares.
pub struct Shared {
    pub config: ServeConfig,
    /// Read-only connections, one per request being served; the semaphore hands out the right to
    /// take one. Each with the [`ChangeToken`] of what it last saw.
    stores: std::sync::Mutex<Vec<(Store, ChangeToken)>>,
    permits: tokio::sync::Semaphore,
    /// Rights to run a bcrypt check (costly: a few at a time).
    pub(crate) verifying: tokio::sync::Semaphore,
    /// Pages as rendered, by address, with the generation they were rendered in. The generation
    /// goes up whenever a connection sees that the database changed (a `fetch` committed), which
    /// makes every cached page stale.
    cache: std::sync::Mutex<std::collections::HashMap<String, (u64, Arc<routes::Answer>)>>,
    generation: std::sync::atomic::AtomicU64,
}

impl Shared {
    /// The answer for `url` as a user who sees `visible` gets it: from the cache when the
    /// database has not changed since it was rendered, else rendered by `route` on a blocking
    /// thread with a connection, once one is free.
    pub async fn answer(
        self: &Arc<Self>,
        url: String,
        visible: Visible,
    ) -> Option<Arc<routes::Answer>> {
        let _permit = self.permits.acquire().await.ok()?;
        let shared = Arc::clone(self);
        tokio::task::spawn_blocking(move || shared.render(&url, &visible))
            .await
            .ok()
            .flatten()
    }

    fn render(&self, url: &str, visible: &Visible) -> Option<Arc<routes::Answer>> {
        use std::sync::atomic::Ordering;
        let (store, mut seen) = lock(&self.stores).pop()?;
        // A connection that cannot tell is taken to have seen a change.
        if store.changed_since(&mut seen).unwrap_or(true) {
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
        let generation = self.generation.load(Ordering::SeqCst);
        // Users who see the same domains share pages.
        let key = format!("{}\n{url}", visible.key());
        let cached = lock(&self.cache)
            .get(&key)
            .filter(|(g, _)| *g == generation)
            .map(|(_, a)| Arc::clone(a));
        let answer = cached.unwrap_or_else(|| {
            let answer = Arc::new(routes::route(&store, &self.config, visible, url));
            let mut cache = lock(&self.cache);
            if answer.status == 200 && self.generation.load(Ordering::SeqCst) == generation {
                if cache.len() >= CACHE_PAGES {
                    cache.clear();
                }
                cache.insert(key, (generation, Arc::clone(&answer)));
            }
            answer
        });
        lock(&self.stores).push((store, seen));
        Some(answer)
    }
}

/// Serves the dashboard until the process is stopped.
pub fn serve(db: &Location, config: ServeConfig) -> Result<(), WebError> {
    // Opened here, so that a missing or unusable database is reported before listening.
    let mut stores = Vec::new();
    for _ in 0..config.threads {
        let store = Store::open_at(db, Open::ReadOnly)?;
        if stores.is_empty() {
            crate::warn(store.warnings());
        }
        let seen = store.change_token()?;
        stores.push((store, seen));
    }
    let addr = config.listen;
    let listen_err = move |e: std::io::Error| WebError::Listen {
        addr,
        reason: e.to_string(),
    };
    let listener = std::net::TcpListener::bind(config.listen).map_err(listen_err)?;
    listener.set_nonblocking(true).map_err(listen_err)?;
    let bound = listener.local_addr().map_err(listen_err)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(config.threads)
        .enable_all()
        .build()
        .map_err(listen_err)?;
    let auth = match (&config.users, &config.password) {
        (Some(users), _) => {
            for warning in users.warnings() {
                eprintln!("dmarc-warden: {warning}");
            }
            format!(
                "; {} user(s) of {}, each seeing their [web.scopes]",
                users.count(),
                users.file().display()
            )
        }
        (None, Some(_)) => "; password required".to_owned(),
        (None, None) => String::new(),
    };
    eprintln!("dmarc-warden: serving http://{bound}/ (read-only over {db}{auth})",);
    let shared = Arc::new(Shared {
        permits: tokio::sync::Semaphore::new(config.threads),
        verifying: tokio::sync::Semaphore::new(2),
        config,
        stores: std::sync::Mutex::new(stores),
        cache: std::sync::Mutex::new(std::collections::HashMap::new()),
        generation: std::sync::atomic::AtomicU64::new(0),
    });
    runtime.block_on(async move {
        // The overview judges every domain, the slowest page: render it before the first visit,
        // and again soon after the database changes (a nightly fetch), not when someone waits.
        let warm = Arc::clone(&shared);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(WARM_EVERY);
            loop {
                every.tick().await;
                warm.answer("/".to_owned(), Visible::All).await;
            }
        });
        let listener = tokio::net::TcpListener::from_std(listener).map_err(listen_err)?;
        let app = axum::Router::new()
            .fallback(routes::handle)
            .with_state(shared);
        axum::serve(listener, app).await.map_err(listen_err)
    })
}
