//! OAuth2 for IMAP: where an account's access tokens come from (client credentials, a refresh token
//! kept in a file, or a command that prints one), how long they are kept, and the errors that name
//! the setting to fix. The token endpoint is spoken to with the `oauth2` crate over `ureq`
//! ([`http`]); the SASL messages that carry a token are in [`sasl`]; `dmarc-warden login`, which
//! obtains the refresh token once, interactively, is in [`login`].
//!
//! Tokens are secrets: they live in [`Secret`], and no error here contains one.

pub mod http;
pub mod login;
pub mod sasl;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use oauth2::basic::{BasicClient, BasicErrorResponse, BasicTokenResponse};
use oauth2::{ClientId, ClientSecret, RefreshToken, RequestTokenError, Scope, TokenResponse};

use crate::secret::{self, Secret};

/// Who issues the tokens: fills in the token and authorisation URLs and the default scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Microsoft Entra ID (Exchange Online, Microsoft 365); needs the tenant.
    Microsoft,
    /// Google (Gmail, Google Workspace).
    Google,
    /// Any other OAuth2 server; needs the token URL.
    Generic,
}

/// The SASL mechanism that carries the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mechanism {
    /// Google's and Microsoft's `XOAUTH2`.
    Xoauth2,
    /// RFC 7628 `OAUTHBEARER`.
    Oauthbearer,
}

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Xoauth2 => "XOAUTH2",
            Mechanism::Oauthbearer => "OAUTHBEARER",
        }
    }
}

/// Where access tokens come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Grant {
    /// The client-credentials grant: an app acting as itself (Microsoft 365 app-only).
    ClientCredentials,
    /// The refresh-token grant, with the refresh token kept in this file (written by `login`).
    RefreshToken(PathBuf),
    /// `sh -c command`: its first line of output is the access token.
    Command(String),
}

/// An account's validated OAuth2 settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub provider: Provider,
    pub tenant: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub scopes: Vec<String>,
    pub token_url: Option<String>,
    pub auth_url: Option<String>,
    /// The device authorisation endpoint (RFC 8628) for `login --device`.
    pub device_url: Option<String>,
    pub grant: Grant,
    /// `None`: chosen from the server's CAPABILITY.
    pub mechanism: Option<Mechanism>,
    pub timeout: Duration,
    /// The server's certificate authority for the token endpoint, beyond the system's.
    pub ca_file: Option<PathBuf>,
}

const MICROSOFT: &str = "https://login.microsoftonline.com";
const MICROSOFT_APP_SCOPE: &str = "https://outlook.office365.com/.default";
const MICROSOFT_USER_SCOPE: &str = "https://outlook.office365.com/IMAP.AccessAsUser.All";
const GOOGLE_TOKEN: &str = "https://oauth2.googleapis.com/token";
const GOOGLE_AUTH: &str = "https://accounts.google.com/o/oauth2/v2/auth";
const GOOGLE_DEVICE: &str = "https://oauth2.googleapis.com/device/code";
const GOOGLE_SCOPE: &str = "https://mail.google.com/";

impl Settings {
    /// The token endpoint: the one set, or the provider's.
    pub fn token_url(&self) -> Option<String> {
        if let Some(url) = &self.token_url {
            return Some(url.clone());
        }
        match self.provider {
            Provider::Microsoft => self
                .tenant
                .as_ref()
                .map(|t| format!("{MICROSOFT}/{t}/oauth2/v2.0/token")),
            Provider::Google => Some(GOOGLE_TOKEN.to_owned()),
            Provider::Generic => None,
        }
    }

    /// The authorisation endpoint `login` sends the browser to: the one set, or the provider's.
    pub fn auth_url(&self) -> Option<String> {
        if let Some(url) = &self.auth_url {
            return Some(url.clone());
        }
        match self.provider {
            Provider::Microsoft => self
                .tenant
                .as_ref()
                .map(|t| format!("{MICROSOFT}/{t}/oauth2/v2.0/authorize")),
            Provider::Google => Some(GOOGLE_AUTH.to_owned()),
            Provider::Generic => None,
        }
    }

    /// The device authorisation endpoint `login --device` asks for a code: the one set, or the
    /// provider's.
    pub fn device_url(&self) -> Option<String> {
        if let Some(url) = &self.device_url {
            return Some(url.clone());
        }
        match self.provider {
            Provider::Microsoft => self
                .tenant
                .as_ref()
                .map(|t| format!("{MICROSOFT}/{t}/oauth2/v2.0/devicecode")),
            Provider::Google => Some(GOOGLE_DEVICE.to_owned()),
            Provider::Generic => None,
        }
    }

    /// The scopes asked for: those set, or the provider's default for this grant. A delegated
    /// grant (refresh token, `login`) asks for `offline_access` at Microsoft, or no refresh token
    /// would come back.
    pub fn scopes(&self, delegated: bool) -> Vec<String> {
        if !self.scopes.is_empty() {
            return self.scopes.clone();
        }
        let defaults: &[&str] = match (self.provider, delegated) {
            (Provider::Microsoft, false) => &[MICROSOFT_APP_SCOPE],
            (Provider::Microsoft, true) => &[MICROSOFT_USER_SCOPE, "offline_access"],
            (Provider::Google, _) => &[GOOGLE_SCOPE],
            (Provider::Generic, _) => &[],
        };
        defaults.iter().map(|s| (*s).to_owned()).collect()
    }

    /// The OAuth2 client for the token endpoint (and, for `login`, the authorisation endpoint).
    fn client(&self) -> Result<TokenClient, OAuthError> {
        let url = self.token_url().ok_or_else(|| {
            OAuthError::Setting(match self.provider {
                Provider::Microsoft => "provider microsoft needs the tenant (oauth2_tenant / \
                                        DMARC_WARDEN_OAUTH2_TENANT)"
                    .to_owned(),
                _ => "no token URL (oauth2_token_url / DMARC_WARDEN_OAUTH2_TOKEN_URL)".to_owned(),
            })
        })?;
        let token_url = oauth2::TokenUrl::new(url.clone()).map_err(|e| {
            OAuthError::Setting(format!(
                "token URL {url:?} (oauth2_token_url / DMARC_WARDEN_OAUTH2_TOKEN_URL): {e}"
            ))
        })?;
        let client_id = self.client_id.clone().ok_or_else(|| {
            OAuthError::Setting(
                "no client id (oauth2_client_id / DMARC_WARDEN_OAUTH2_CLIENT_ID)".to_owned(),
            )
        })?;
        let mut client = BasicClient::new(ClientId::new(client_id)).set_token_uri(token_url);
        if let Some(secret) = &self.client_secret {
            client = client.set_client_secret(ClientSecret::new(secret.expose().to_owned()));
        }
        Ok(client)
    }

    fn http(&self) -> Result<http::Http, OAuthError> {
        http::Http::new(self.timeout, self.ca_file.as_deref())
    }
}

/// The oauth2 crate's client with a token endpoint (and no other endpoint yet).
type TokenClient = oauth2::Client<
    BasicErrorResponse,
    BasicTokenResponse,
    oauth2::basic::BasicTokenIntrospectionResponse,
    oauth2::StandardRevocableToken,
    oauth2::basic::BasicRevocationErrorResponse,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

/// An account's access tokens: obtained when first needed and kept until shortly before they
/// expire, across reconnections and folders. Shared by the connections of one run.
#[derive(Debug)]
pub struct Tokens {
    settings: Settings,
    cached: Mutex<Option<Cached>>,
}

#[derive(Debug)]
struct Cached {
    token: Secret,
    obtained: Instant,
    lifetime: Option<Duration>,
}

/// Whether a token obtained at `obtained` and valid for `lifetime` is still good to use at `now`:
/// it is given up a tenth of its lifetime (at most a minute) before it expires, so that it does
/// not expire between being taken and being presented. A token of unknown lifetime is kept until
/// the server refuses it.
pub fn fresh(obtained: Instant, lifetime: Option<Duration>, now: Instant) -> bool {
    match lifetime {
        None => true,
        Some(lifetime) => {
            let margin = (lifetime / 10).min(Duration::from_secs(60));
            now + margin < obtained + lifetime
        }
    }
}

impl Tokens {
    pub fn new(settings: Settings) -> Tokens {
        Tokens {
            settings,
            cached: Mutex::new(None),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// A token good for now: the cached one while fresh, otherwise a new one.
    pub fn access_token(&self) -> Result<Secret, OAuthError> {
        let mut cached = crate::lock(&self.cached);
        if let Some(c) = cached.as_ref()
            && fresh(c.obtained, c.lifetime, Instant::now())
        {
            return Ok(c.token.clone());
        }
        let new = self.obtain()?;
        let token = new.token.clone();
        *cached = Some(new);
        Ok(token)
    }

    /// A new token, after the server refused `refused` (the cached one is dropped unless another
    /// connection replaced it meanwhile).
    pub fn refresh(&self, refused: &Secret) -> Result<Secret, OAuthError> {
        let mut cached = crate::lock(&self.cached);
        if let Some(c) = cached.as_ref()
            && c.token.expose() != refused.expose()
            && fresh(c.obtained, c.lifetime, Instant::now())
        {
            return Ok(c.token.clone());
        }
        *cached = None;
        let new = self.obtain()?;
        let token = new.token.clone();
        *cached = Some(new);
        Ok(token)
    }

    fn obtain(&self) -> Result<Cached, OAuthError> {
        let obtained = Instant::now();
        let cached = match &self.settings.grant {
            Grant::Command(command) => {
                let token = Secret::from_command(command).map_err(|e| OAuthError::Command {
                    reason: e.to_string(),
                })?;
                Cached {
                    token,
                    obtained,
                    lifetime: None,
                }
            }
            Grant::ClientCredentials => {
                if self.settings.client_secret.is_none() {
                    return Err(OAuthError::Setting(
                        "no client secret (oauth2_client_secret_file / \
                         DMARC_WARDEN_OAUTH2_CLIENT_SECRET_FILE or DMARC_WARDEN_OAUTH2_CLIENT_SECRET), \
                         no refresh token file and no token command: nothing to get a token with"
                            .to_owned(),
                    ));
                }
                let client = self.settings.client()?;
                let http = self.settings.http()?;
                let scopes = self.settings.scopes(false).into_iter().map(Scope::new);
                let response = client
                    .exchange_client_credentials()
                    .add_scopes(scopes)
                    .request(&http);
                let response = self.check(response, &http, "client credentials")?;
                cached(&response, obtained)
            }
            Grant::RefreshToken(path) => {
                let refresh = read_refresh_token(path)?;
                let client = self.settings.client()?;
                let http = self.settings.http()?;
                let refresh_token = RefreshToken::new(refresh.expose().to_owned());
                let scopes = self.settings.scopes(true).into_iter().map(Scope::new);
                let response = client
                    .exchange_refresh_token(&refresh_token)
                    .add_scopes(scopes)
                    .request(&http);
                let response = self.check(response, &http, "refresh token")?;
                // A provider that rotates refresh tokens sends a new one: the old one may already
                // be void, so the new one must be kept before anything else happens.
                if let Some(new) = response.refresh_token()
                    && new.secret() != refresh.expose()
                {
                    secret::write_file(path, &Secret::new(new.secret().to_owned())).map_err(
                        |e| OAuthError::RefreshTokenFile {
                            path: path.clone(),
                            reason: format!("cannot store the new refresh token: {e}"),
                        },
                    )?;
                }
                cached(&response, obtained)
            }
        };
        Ok(cached)
    }

    /// The token response, or an error that says what the token endpoint said.
    fn check(
        &self,
        response: Result<BasicTokenResponse, RequestTokenError<ureq::Error, BasicErrorResponse>>,
        http: &http::Http,
        grant: &str,
    ) -> Result<BasicTokenResponse, OAuthError> {
        let url = self.settings.token_url().unwrap_or_default();
        let secrets: Vec<&str> = self
            .settings
            .client_secret
            .iter()
            .map(|s| s.expose())
            .collect();
        response.map_err(|e| token_error(e, &url, grant, http.status(), &secrets))
    }
}

fn cached(response: &BasicTokenResponse, obtained: Instant) -> Cached {
    Cached {
        token: Secret::new(response.access_token().secret().to_owned()),
        obtained,
        lifetime: response.expires_in(),
    }
}

/// Turns what the oauth2 crate reports into one line that names the endpoint and the setting.
pub(crate) fn token_error<T: oauth2::ErrorResponseType + std::fmt::Display>(
    e: RequestTokenError<ureq::Error, oauth2::StandardErrorResponse<T>>,
    url: &str,
    grant: &str,
    status: Option<u16>,
    secrets: &[&str],
) -> OAuthError {
    match e {
        RequestTokenError::ServerResponse(r) => {
            let code = r.error().to_string();
            let description = r
                .error_description()
                .map(|d| one_line(d, secrets))
                .unwrap_or_default();
            OAuthError::Refused {
                url: url.to_owned(),
                grant: grant.to_owned(),
                hint: hint(&code),
                error: code,
                description,
            }
        }
        RequestTokenError::Request(e) => OAuthError::Unreachable {
            url: url.to_owned(),
            reason: one_line(&e.to_string(), secrets),
        },
        RequestTokenError::Parse(_, _) | RequestTokenError::Other(_) => OAuthError::BadResponse {
            url: url.to_owned(),
            status: status.map_or_else(
                || "an unexpected answer".to_owned(),
                |s| format!("HTTP {s}"),
            ),
        },
    }
}

/// What to check for a token endpoint's error code (RFC 6749 section 5.2).
fn hint(code: &str) -> String {
    match code {
        "invalid_client" | "unauthorized_client" => {
            " (check DMARC_WARDEN_OAUTH2_CLIENT_ID and the client secret)"
        }
        "invalid_grant" => {
            " (the refresh token is void or expired: run `dmarc-warden login --account NAME` again)"
        }
        "invalid_scope" => " (check DMARC_WARDEN_OAUTH2_SCOPE)",
        "invalid_request" => " (check DMARC_WARDEN_OAUTH2_TENANT / DMARC_WARDEN_OAUTH2_TOKEN_URL)",
        _ => "",
    }
    .to_owned()
}

/// Text from a server, made fit for one line of an error message: control characters out, known
/// secrets masked, at most 300 characters.
pub(crate) fn one_line(text: &str, secrets: &[&str]) -> String {
    let mut s: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        s = s.replace(secret, "***");
    }
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match s.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("OAuth2: {0}")]
    Setting(String),
    #[error(
        "the token endpoint {url} refused the {grant} request: {error}{}{hint}",
        if description.is_empty() { String::new() } else { format!(": {description}") }
    )]
    Refused {
        url: String,
        grant: String,
        error: String,
        description: String,
        hint: String,
    },
    #[error(
        "cannot reach the token endpoint {url}: {reason} (check DMARC_WARDEN_OAUTH2_TOKEN_URL / \
         DMARC_WARDEN_OAUTH2_PROVIDER / DMARC_WARDEN_OAUTH2_TENANT)"
    )]
    Unreachable { url: String, reason: String },
    #[error(
        "the token endpoint {url} answered {status}, not a token (check \
         DMARC_WARDEN_OAUTH2_TOKEN_URL / DMARC_WARDEN_OAUTH2_TENANT)"
    )]
    BadResponse { url: String, status: String },
    #[error(
        "refresh token file {path} (oauth2_refresh_token_file / \
         DMARC_WARDEN_OAUTH2_REFRESH_TOKEN_FILE): {reason}"
    )]
    RefreshTokenFile { path: PathBuf, reason: String },
    #[error("oauth2_token_command / DMARC_WARDEN_OAUTH2_TOKEN_COMMAND: {reason}")]
    Command { reason: String },
}

/// The refresh token in `path`, by [`Secret::from_file`]'s rule.
fn read_refresh_token(path: &Path) -> Result<Secret, OAuthError> {
    use crate::secret::SecretError;
    Secret::from_file(path).map_err(|e| OAuthError::RefreshTokenFile {
        path: path.to_owned(),
        reason: match e {
            SecretError::Read { source, .. } => {
                format!("cannot read it ({source}); `dmarc-warden login --account NAME` writes it")
            }
            _ => "it is empty; `dmarc-warden login --account NAME` writes it".to_owned(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(provider: Provider) -> Settings {
        Settings {
            provider,
            tenant: Some("contoso.onmicrosoft.com".into()),
            client_id: Some("app".into()),
            client_secret: None,
            scopes: Vec::new(),
            token_url: None,
            auth_url: None,
            device_url: None,
            grant: Grant::ClientCredentials,
            mechanism: None,
            timeout: Duration::from_secs(5),
            ca_file: None,
        }
    }

    #[test]
    fn providers_fill_in_urls_and_scopes() {
        let ms = settings(Provider::Microsoft);
        assert_eq!(
            ms.token_url().unwrap(),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        assert_eq!(ms.scopes(false), ["https://outlook.office365.com/.default"]);
        assert!(ms.scopes(true).contains(&"offline_access".to_owned()));
        let google = settings(Provider::Google);
        assert_eq!(google.token_url().unwrap(), GOOGLE_TOKEN);
        assert_eq!(google.scopes(true), ["https://mail.google.com/"]);
        assert!(settings(Provider::Generic).token_url().is_none());
        assert_eq!(
            ms.device_url().unwrap(),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/devicecode"
        );
        // The token URL set always wins.
        let mut own = settings(Provider::Microsoft);
        own.token_url = Some("http://127.0.0.1/t".into());
        own.scopes = vec!["x".into()];
        assert_eq!(own.token_url().unwrap(), "http://127.0.0.1/t");
        assert_eq!(own.scopes(false), ["x"]);
    }

    #[test]
    fn tokens_are_given_up_shortly_before_they_expire() {
        let t0 = Instant::now();
        let hour = Some(Duration::from_secs(3600));
        assert!(fresh(t0, hour, t0 + Duration::from_secs(3000)));
        assert!(!fresh(t0, hour, t0 + Duration::from_secs(3541)));
        let short = Some(Duration::from_secs(10));
        assert!(fresh(t0, short, t0 + Duration::from_secs(8)));
        assert!(!fresh(t0, short, t0 + Duration::from_secs(9)));
        assert!(fresh(t0, None, t0 + Duration::from_secs(86_400)));
    }

    #[test]
    fn server_text_becomes_one_line_without_secrets() {
        let line = one_line(
            "AADSTS7000215: bad\r\nsecret s3cr3t given\ttrace",
            &["s3cr3t"],
        );
        assert_eq!(line, "AADSTS7000215: bad secret *** given trace");
        assert_eq!(one_line(&"x".repeat(400), &[]).chars().count(), 301);
    }
}
