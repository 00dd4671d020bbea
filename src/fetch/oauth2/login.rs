//! `dmarc-warden login`: obtains a refresh token once, interactively, and stores it (mode 0600)
//! where `fetch` reads it. Two flows:
//!
//! - the authorisation-code flow with PKCE (RFC 7636) and a loopback redirect (RFC 8252 section
//!   7.3): the user opens the printed address in a browser and signs in; the provider sends the
//!   browser back to a one-request HTTP server (`tiny_http`) on 127.0.0.1, and the code it carries
//!   is exchanged for tokens. Google allows this one for the mail scope, Microsoft too;
//! - with `--device`, the device authorisation grant (RFC 8628): an address and a code to enter on
//!   any device, while this polls the token endpoint. For servers without a browser (Microsoft).

use std::path::Path;
use std::time::{Duration, Instant};

use oauth2::basic::BasicTokenResponse;
use oauth2::{AuthUrl, AuthorizationCode, CsrfToken, PkceCodeChallenge, RedirectUrl, Scope};
use oauth2::{DeviceAuthorizationUrl, StandardDeviceAuthorizationResponse};
use oauth2::{TokenResponse, url::Url};

use super::{OAuthError, Provider, Settings, token_error};
use crate::secret::{self, Secret};

/// What `login` needs beyond the account's OAuth2 settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// The user to sign in as (a hint to the provider's sign-in page).
    pub user: Option<String>,
    /// Port of the loopback redirect; 0 for any free one.
    pub port: u16,
    /// How long to wait for the browser.
    pub wait: Duration,
    /// The device flow instead of the loopback redirect.
    pub device: bool,
}

/// Runs the flow and stores the refresh token in `file`. `say` shows the user what to do.
pub fn login(
    settings: &Settings,
    file: &Path,
    options: &Options,
    say: &mut dyn FnMut(&str),
) -> Result<(), OAuthError> {
    let response = if options.device {
        device_flow(settings, options, say)?
    } else {
        redirect_flow(settings, options, say)?
    };
    let url = settings.token_url().unwrap_or_default();
    let refresh = response.refresh_token().ok_or_else(|| {
        OAuthError::Setting(format!(
            "the token endpoint {url} sent no refresh token (Microsoft: the scope must include \
             offline_access; check DMARC_WARDEN_OAUTH2_SCOPE)"
        ))
    })?;
    let refresh = Secret::new(refresh.secret().to_owned());
    secret::write_file(file, &refresh).map_err(|e| OAuthError::RefreshTokenFile {
        path: file.to_owned(),
        reason: format!("cannot write it: {e}"),
    })
}

/// RFC 8628: a code for the user to enter at the provider's address, then the token endpoint
/// polled (at the interval the provider asks for) until the user has signed in.
fn device_flow(
    settings: &Settings,
    options: &Options,
    say: &mut dyn FnMut(&str),
) -> Result<BasicTokenResponse, OAuthError> {
    let device = settings.device_url().ok_or_else(|| {
        OAuthError::Setting(match settings.provider {
            Provider::Microsoft => {
                "provider microsoft needs the tenant (oauth2_tenant / DMARC_WARDEN_OAUTH2_TENANT)"
                    .to_owned()
            }
            _ => "no device authorisation URL for login --device (oauth2_device_url / \
                  DMARC_WARDEN_OAUTH2_DEVICE_URL)"
                .to_owned(),
        })
    })?;
    let device_url = DeviceAuthorizationUrl::new(device.clone()).map_err(|e| {
        OAuthError::Setting(format!(
            "device authorisation URL {device:?} (oauth2_device_url / \
             DMARC_WARDEN_OAUTH2_DEVICE_URL): {e}"
        ))
    })?;
    let client = settings.client()?.set_device_authorization_url(device_url);
    let http = settings.http()?;
    let secrets: Vec<&str> = settings.client_secret.iter().map(|s| s.expose()).collect();
    let details: StandardDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scopes(settings.scopes(true).into_iter().map(Scope::new))
        .request(&http)
        .map_err(|e| token_error(e, &device, "device authorisation", http.status(), &secrets))?;
    say(&format!(
        "On any device, open {} and enter the code {}{}",
        details.verification_uri().as_str(),
        details.user_code().secret(),
        options
            .user
            .as_ref()
            .map(|u| format!(", then sign in as {u}"))
            .unwrap_or_default()
    ));
    if let Some(complete) = details.verification_uri_complete() {
        say(&format!("(or open {})", complete.secret()));
    }
    say(&format!(
        "Waiting up to {} s for the sign-in …",
        options.wait.as_secs()
    ));
    let url = settings.token_url().unwrap_or_default();
    client
        .exchange_device_access_token(&details)
        .request(&http, std::thread::sleep, Some(options.wait))
        .map_err(|e| token_error(e, &url, "device code", http.status(), &secrets))
}

/// The authorisation-code flow with PKCE and a loopback redirect.
fn redirect_flow(
    settings: &Settings,
    options: &Options,
    say: &mut dyn FnMut(&str),
) -> Result<BasicTokenResponse, OAuthError> {
    let auth = settings.auth_url().ok_or_else(|| {
        OAuthError::Setting(match settings.provider {
            Provider::Microsoft => {
                "provider microsoft needs the tenant (oauth2_tenant / DMARC_WARDEN_OAUTH2_TENANT)"
                    .to_owned()
            }
            _ => "no authorisation URL for login (oauth2_auth_url / DMARC_WARDEN_OAUTH2_AUTH_URL)"
                .to_owned(),
        })
    })?;
    let auth = AuthUrl::new(auth.clone()).map_err(|e| {
        OAuthError::Setting(format!(
            "authorisation URL {auth:?} (oauth2_auth_url / DMARC_WARDEN_OAUTH2_AUTH_URL): {e}"
        ))
    })?;
    let server = tiny_http::Server::http(("127.0.0.1", options.port)).map_err(|e| {
        OAuthError::Setting(format!(
            "cannot listen on 127.0.0.1:{} for the browser's redirect: {e}",
            options.port
        ))
    })?;
    let port = server
        .server_addr()
        .to_ip()
        .map_or(options.port, |a| a.port());
    // Microsoft registers loopback redirects as `http://localhost` (any port); Google and most
    // others take the address itself.
    let host = match settings.provider {
        Provider::Microsoft => "localhost",
        _ => "127.0.0.1",
    };
    let redirect = format!("http://{host}:{port}/");
    let redirect_url = RedirectUrl::new(redirect.clone())
        .map_err(|e| OAuthError::Setting(format!("redirect URL {redirect}: {e}")))?;
    let client = settings
        .client()?
        .set_auth_uri(auth)
        .set_redirect_uri(redirect_url);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(CsrfToken::new_random)
        .add_scopes(settings.scopes(true).into_iter().map(Scope::new))
        .set_pkce_challenge(challenge);
    if let Some(user) = &options.user {
        request = request.add_extra_param("login_hint", user.clone());
    }
    if settings.provider == Provider::Google {
        // Without these Google returns no refresh token on a second sign-in.
        request = request
            .add_extra_param("access_type", "offline")
            .add_extra_param("prompt", "consent");
    }
    let (url, state) = request.url();
    say(&format!(
        "Open this address in a browser and sign in{}:",
        options
            .user
            .as_ref()
            .map(|u| format!(" as {u}"))
            .unwrap_or_default()
    ));
    say(url.as_str());
    say(&format!(
        "Waiting up to {} s for the browser to come back to {redirect} …",
        options.wait.as_secs()
    ));
    let code = wait_for_code(&server, state.secret(), options.wait)?;
    drop(server);
    let http = settings.http()?;
    let url = settings.token_url().unwrap_or_default();
    let secrets: Vec<&str> = settings.client_secret.iter().map(|s| s.expose()).collect();
    client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request(&http)
        .map_err(|e| token_error(e, &url, "authorisation code", http.status(), &secrets))
}

/// Serves the loopback redirect until it brings a code with the right state (or an error), or
/// `wait` passes. Other requests (a browser's favicon, say) get 404.
fn wait_for_code(
    server: &tiny_http::Server,
    state: &str,
    wait: Duration,
) -> Result<String, OAuthError> {
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let request = match server.recv_timeout(left) {
            Ok(Some(r)) => r,
            Ok(None) => {
                return Err(OAuthError::Setting(format!(
                    "no sign-in within {} s; run `dmarc-warden login` again",
                    wait.as_secs()
                )));
            }
            Err(e) => {
                return Err(OAuthError::Setting(format!(
                    "waiting for the browser's redirect: {e}"
                )));
            }
        };
        let Ok(url) = Url::parse(&format!("http://127.0.0.1{}", request.url())) else {
            let _ = request.respond(page(400, "Not an address."));
            continue;
        };
        let param = |name: &str| {
            url.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        if let Some(error) = param("error") {
            let description = param("error_description").unwrap_or_default();
            let _ = request.respond(page(400, "Sign-in failed; see the terminal."));
            return Err(OAuthError::Setting(format!(
                "the sign-in was refused: {}",
                super::one_line(&format!("{error} {description}"), &[])
            )));
        }
        let Some(code) = param("code") else {
            let _ = request.respond(page(404, "Nothing here."));
            continue;
        };
        if param("state").as_deref() != Some(state) {
            let _ = request.respond(page(400, "This sign-in was not started by this login."));
            continue;
        }
        let _ = request.respond(page(
            200,
            "dmarc-warden: signed in. You can close this window.",
        ));
        return Ok(code);
    }
}

fn page(status: u16, text: &str) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    tiny_http::Response::from_string(text).with_status_code(status)
}
