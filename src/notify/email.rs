//! Email over SMTP (lettre, blocking, rustls): implicit TLS or STARTTLS with the certificate checked
//! against the system's roots and an optional `ca_file`, or no TLS to a loopback host; login when a
//! username is set. Sends one multipart message: plain text and HTML.

use lettre::message::{Mailbox, MultiPart, header};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{SmtpTransport, Transport};

use super::NotifyError;
use super::render::Message;
use super::settings::{Email, SmtpTls};

/// Sends `m` to the channel's recipients.
pub fn send(e: &Email, m: &Message) -> Result<(), NotifyError> {
    let err = |what: &str, reason: String| NotifyError::Email(format!("{what}: {reason}"));
    let mailbox = |a: &str| {
        a.parse::<Mailbox>()
            .map_err(|x| err(&format!("address {a:?}"), x.to_string()))
    };
    let mut builder = lettre::Message::builder()
        .from(mailbox(&e.from)?)
        .subject(&m.subject)
        // A generated Message-ID (lettre adds the Date).
        .message_id(None)
        .header(header::UserAgent::from(format!(
            "dmarc-warden/{}",
            env!("CARGO_PKG_VERSION")
        )));
    for to in &e.to {
        builder = builder.to(mailbox(to)?);
    }
    let message = builder
        .multipart(MultiPart::alternative_plain_html(
            m.text.clone(),
            m.html.clone(),
        ))
        .map_err(|x| err("cannot build the message", x.to_string()))?;

    let tls = match e.tls {
        SmtpTls::None => Tls::None,
        mode => {
            let mut params = TlsParameters::builder(e.host.clone());
            if let Some(path) = &e.ca_file {
                let pem = std::fs::read(path).map_err(|x| NotifyError::CaFile {
                    path: path.clone(),
                    reason: x.to_string(),
                })?;
                let cert = Certificate::from_pem(&pem).map_err(|x| NotifyError::CaFile {
                    path: path.clone(),
                    reason: x.to_string(),
                })?;
                params = params.add_root_certificate(cert);
            }
            let params = params
                .build_rustls()
                .map_err(|x| err("TLS setup", x.to_string()))?;
            if mode == SmtpTls::Implicit {
                Tls::Wrapper(params)
            } else {
                Tls::Required(params)
            }
        }
    };
    let mut transport = SmtpTransport::builder_dangerous(&e.host)
        .port(e.port)
        .tls(tls)
        .timeout(Some(e.timeout));
    if let Some((user, password)) = &e.login {
        transport =
            transport.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
    }
    transport
        .build()
        .send(&message)
        .map_err(|x| err(&format!("{}:{}", e.host, e.port), x.to_string()))?;
    Ok(())
}
