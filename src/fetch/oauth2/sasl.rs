//! The SASL messages that carry an access token to the IMAP server: `XOAUTH2` (Google's and
//! Microsoft's) and `OAUTHBEARER` (RFC 7628), and the choice between them from CAPABILITY.

use std::cell::Cell;

use super::Mechanism;
use crate::secret::Secret;

/// The mechanism to use: the one configured, else OAUTHBEARER when offered (the standard), else
/// XOAUTH2 when offered. `None` when the server offers neither.
pub fn choose(configured: Option<Mechanism>, offered: &dyn Fn(&str) -> bool) -> Option<Mechanism> {
    if configured.is_some() {
        return configured;
    }
    [Mechanism::Oauthbearer, Mechanism::Xoauth2]
        .into_iter()
        .find(|m| offered(&format!("AUTH={}", m.name())))
}

/// Answers the server's challenges for the imap crate's `Client::authenticate`: the token first;
/// to a second challenge (the server's error report), the reply that ends the exchange so the
/// server can say NO.
pub struct Authenticator {
    first: Vec<u8>,
    abort: &'static [u8],
    sent: Cell<bool>,
}

impl Authenticator {
    pub fn new(
        mechanism: Mechanism,
        user: &str,
        host: &str,
        port: u16,
        token: &Secret,
    ) -> Authenticator {
        let token = token.expose();
        let (first, abort): (String, &'static [u8]) = match mechanism {
            Mechanism::Xoauth2 => (format!("user={user}\x01auth=Bearer {token}\x01\x01"), b""),
            // RFC 7628 section 3.1; the authzid (`a=`) names the user, which Dovecot 2.3 requires.
            // A server's error challenge is answered with a single %x01 (section 3.2.3).
            Mechanism::Oauthbearer => (
                format!(
                    "n,a={},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01",
                    gs2_escape(user)
                ),
                b"\x01",
            ),
        };
        Authenticator {
            first: first.into_bytes(),
            abort,
            sent: Cell::new(false),
        }
    }
}

impl imap::Authenticator for Authenticator {
    type Response = Vec<u8>;

    fn process(&self, _challenge: &[u8]) -> Vec<u8> {
        if self.sent.replace(true) {
            self.abort.to_vec()
        } else {
            self.first.clone()
        }
    }
}

/// RFC 5801 saslname: `,` and `=` escaped.
fn gs2_escape(s: &str) -> String {
    s.replace('=', "=3D").replace(',', "=2C")
}

#[cfg(test)]
mod tests {
    use super::*;
    use imap::Authenticator as _;

    #[test]
    fn messages_follow_the_specifications() {
        let token = Secret::new("tok".into());
        let x = Authenticator::new(Mechanism::Xoauth2, "u@example.org", "h", 993, &token);
        assert_eq!(
            x.process(b""),
            b"user=u@example.org\x01auth=Bearer tok\x01\x01"
        );
        assert_eq!(x.process(b"{\"status\":\"401\"}"), b"");
        let o = Authenticator::new(Mechanism::Oauthbearer, "a,b=c", "h", 993, &token);
        assert_eq!(
            o.process(b""),
            b"n,a=a=2Cb=3Dc,\x01host=h\x01port=993\x01auth=Bearer tok\x01\x01"
        );
        assert_eq!(o.process(b"{}"), b"\x01");
    }

    #[test]
    fn oauthbearer_is_preferred_when_offered() {
        let both = |c: &str| c == "AUTH=XOAUTH2" || c == "AUTH=OAUTHBEARER";
        let xo = |c: &str| c == "AUTH=XOAUTH2";
        assert_eq!(choose(None, &both), Some(Mechanism::Oauthbearer));
        assert_eq!(choose(None, &xo), Some(Mechanism::Xoauth2));
        assert_eq!(choose(None, &|_| false), None);
        assert_eq!(
            choose(Some(Mechanism::Xoauth2), &both),
            Some(Mechanism::Xoauth2)
        );
    }
}
