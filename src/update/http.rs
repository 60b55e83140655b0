//! The HTTP(S) client of every update source: ureq (blocking) over rustls with ring.
//!
//! Invariants: TLS trusts exactly the certificates of one PEM file (the system bundle,
//! `SSL_CERT_FILE`, or a file named by the caller); every request has a connect timeout
//! and a timeout on each read, so a stalled server ends in an error, never a hang;
//! HTTP statuses are answers, not errors (callers decide); redirects never carry the
//! `Authorization` header along. Errors show URLs through [`shown`], without query,
//! fragment or credentials.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};
use url::Url;

/// Debian's (and the image's) bundle of trusted CAs.
pub const SYSTEM_CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The CA file to trust: the one given, else `SSL_CERT_FILE` (as OpenSSL does), else
/// the system bundle.
pub fn ca_file(explicit: Option<&Path>, ssl_cert_file: Option<String>) -> PathBuf {
    match (explicit, ssl_cert_file) {
        (Some(path), _) => path.to_path_buf(),
        (None, Some(env)) if !env.is_empty() => PathBuf::from(env),
        _ => PathBuf::from(SYSTEM_CA_FILE),
    }
}

#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    timeout: Duration,
}

impl Client {
    /// A client trusting the certificates in the PEM file `ca_file`.
    pub fn new(ca_file: &Path, timeout: Duration) -> Result<Client, String> {
        let pem = std::fs::read(ca_file)
            .map_err(|e| format!("cannot read the CA certificates {}: {e}", ca_file.display()))?;
        let roots: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(PemItem::Certificate(cert)) => Some(cert),
                _ => None,
            })
            .collect();
        if roots.is_empty() {
            return Err(format!("{} holds no PEM certificate (a CA bundle is needed)", ca_file.display()));
        }
        let tls = TlsConfig::builder().root_certs(RootCerts::Specific(Arc::new(roots))).build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .timeout_connect(Some(timeout))
            .timeout_per_read(Some(timeout))
            .timeout_per_write(Some(timeout))
            // A poll comes minutes after the last request; servers close idle connections
            // sooner (uvicorn after 5 s), and a request on a connection the server just
            // closed fails ("Peer disconnect", seen in bench-update). A new connection
            // for each request costs one TLS handshake per poll.
            .max_idle_connections(0)
            .user_agent(concat!("makespacelive/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Ok(Client { agent, timeout })
    }

    pub fn agent(&self) -> &ureq::Agent {
        &self.agent
    }

    /// A transport error as a sentence naming the (shown) URL.
    pub fn describe(&self, url: &Url, error: &ureq::Error) -> String {
        match error {
            ureq::Error::Timeout(_) => self.stalled(url),
            ureq::Error::Io(e) => self.describe_io(url, e),
            other => format!("{}: {other}", shown(url)),
        }
    }

    /// An error reading a body (ureq wraps its own errors, timeouts among them, in io).
    pub fn describe_io(&self, url: &Url, error: &std::io::Error) -> String {
        let inner = error.get_ref().and_then(|e| e.downcast_ref::<ureq::Error>());
        match inner {
            _ if error.kind() == std::io::ErrorKind::TimedOut => self.stalled(url),
            Some(inner) => self.describe(url, inner),
            None => format!("{}: {error}", shown(url)),
        }
    }

    fn stalled(&self, url: &Url) -> String {
        format!("{}: no data for {} s", shown(url), self.timeout.as_secs_f32())
    }
}

/// A URL as errors and logs may show it: no credentials, query or fragment (signed
/// download links carry their token there).
pub fn shown(url: &Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    if url.query().is_some() {
        url.set_query(Some(crate::secrets::MASK));
    }
    url.set_fragment(None);
    url.into()
}

/// The start of a foreign answer as an error may quote it: `secrets` masked, control
/// characters blanked, at most 80 characters.
pub fn excerpt(text: &str, secrets: &[crate::secrets::Secret]) -> String {
    let scrubbed = crate::secrets::scrub(text, secrets);
    let short: String = scrubbed.chars().take(80).map(|c| if c.is_control() { ' ' } else { c }).collect();
    format!("{short:?}")
}

/// Plain HTTP is accepted only to this machine (tests, a local mirror) or when the
/// settings allow it explicitly; everything else must be HTTPS.
pub fn check_scheme(url: &Url, allow_http: bool, what: &str) -> Result<(), String> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if allow_http || is_loopback(url) => Ok(()),
        "http" => {
            Err(format!("{what} {} is plain HTTP: only https:// is allowed (http:// only to localhost)", shown(url)))
        }
        other => Err(format!("{what} {} has the scheme {other}: only https:// is allowed", shown(url))),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_file_prefers_the_explicit_file_then_ssl_cert_file() {
        let explicit = Path::new("/x/ca.pem");
        assert_eq!(ca_file(Some(explicit), Some("/env.pem".into())), explicit);
        assert_eq!(ca_file(None, Some("/env.pem".into())), Path::new("/env.pem"));
        assert_eq!(ca_file(None, Some(String::new())), Path::new(SYSTEM_CA_FILE));
        assert_eq!(ca_file(None, None), Path::new(SYSTEM_CA_FILE));
    }

    #[test]
    fn shown_hides_credentials_and_queries() {
        let url = Url::parse("https://user:pw@example.com/a/b?token=abc#frag").unwrap();
        assert_eq!(shown(&url), "https://example.com/a/b?****");
    }

    #[test]
    fn plain_http_only_to_loopback_unless_allowed() {
        let check = |u: &str, allow| check_scheme(&Url::parse(u).unwrap(), allow, "the manifest");
        assert!(check("https://example.com/m.json", false).is_ok());
        assert!(check("http://127.0.0.1:8080/m.json", false).is_ok());
        assert!(check("http://localhost/m.json", false).is_ok());
        assert!(check("http://[::1]/m.json", false).is_ok());
        assert!(check("http://example.com/m.json", true).is_ok());
        let err = check("http://example.com/m.json", false).unwrap_err();
        assert!(err.contains("only https:// is allowed"), "{err}");
        assert!(check("ftp://example.com/m.json", true).unwrap_err().contains("scheme ftp"));
    }
}
