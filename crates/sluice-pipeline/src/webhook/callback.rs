//! Callback URLs: parsed once, judged against the address policy as far as the URL alone allows (a literal
//! address in any of its spellings, or `localhost`); names are resolved and judged at delivery time.

use std::fmt;
use std::net::IpAddr;

use reqwest::Url;
use url::Host;

use super::address::{RefusedAddress, check_address};

/// Longest callback URL accepted.
const MAX_URL_LEN: usize = 2048;

/// Why a callback URL cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    /// Not a URL at all.
    #[error("callback_url is not a valid absolute URL")]
    Malformed(#[source] url::ParseError),
    /// Longer than sluice stores.
    #[error("callback_url is longer than {MAX_URL_LEN} bytes")]
    TooLong,
    /// A scheme other than http or https.
    #[error("callback_url must use http or https, not {0:?}")]
    Scheme(String),
    /// No host to call.
    #[error("callback_url has no host")]
    NoHost,
    /// The host is (or always resolves to) an address webhooks may not reach.
    #[error("callback_url is refused")]
    Refused(#[source] RefusedAddress),
    /// Webhooks are not configured: without `webhooks.secret`, receivers could not verify a delivery.
    #[error("webhooks are not enabled on this server (webhooks.secret is not set)")]
    NotConfigured,
}

impl CallbackError {
    /// A stable snake_case code for API errors and job documents.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Refused(_) => "callback_refused",
            Self::NotConfigured => "webhooks_disabled",
            Self::Malformed(_) | Self::TooLong | Self::Scheme(_) | Self::NoHost => "invalid_callback_url",
        }
    }
}

/// A callback URL that passed every check the URL alone allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallbackUrl(Url);

impl CallbackUrl {
    /// Parses `raw` and judges its host: a scheme other than http(s) is refused, and so is a host that is a
    /// forbidden address (the URL parser reads `2130706433`, `0x7f000001` and `[::ffff:127.0.0.1]` as the
    /// addresses they spell) or `localhost`.
    pub fn parse(raw: &str, allow_private: bool) -> Result<Self, CallbackError> {
        let raw = raw.trim();
        if raw.len() > MAX_URL_LEN {
            return Err(CallbackError::TooLong);
        }
        let url = Url::parse(raw).map_err(CallbackError::Malformed)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(CallbackError::Scheme(url.scheme().to_owned()));
        }
        let literal = match url.host() {
            None => return Err(CallbackError::NoHost),
            Some(Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
            Some(Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
            Some(Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                (name == "localhost" || name.ends_with(".localhost")).then_some(IpAddr::from([127, 0, 0, 1]))
            }
        };
        if let Some(address) = literal {
            check_address(address, allow_private).map_err(CallbackError::Refused)?;
        }
        Ok(Self(url))
    }

    /// The URL to call.
    pub fn url(&self) -> &Url {
        &self.0
    }

    /// The URL as stored in the job record.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The URL without user info, query and fragment, for job documents and logs (they may carry tokens).
    pub fn redacted(&self) -> String {
        let mut shown = self.0.clone();
        // Both only fail for URLs that cannot have credentials, which http(s) URLs always can.
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        shown.set_query(None);
        shown.set_fragment(None);
        shown.to_string()
    }
}

impl fmt::Display for CallbackUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(raw: &str) -> bool {
        matches!(CallbackUrl::parse(raw, false), Err(CallbackError::Refused(_)))
    }

    #[test]
    fn literal_forbidden_hosts_in_every_spelling_are_refused() {
        for raw in [
            "http://127.0.0.1/hook",
            "http://10.1.2.3/hook",
            "http://172.16.0.5/hook",
            "http://192.168.1.1/hook",
            "http://[::1]/hook",
            "http://[fd00::1]/hook",
            "http://169.254.169.254/latest/meta-data/",
            "http://2130706433/hook",
            "http://0x7f000001/hook",
            "http://0177.0.0.1/hook",
            "http://127.1/hook",
            "http://[::ffff:127.0.0.1]/hook",
            "http://[::ffff:7f00:1]/hook",
            "http://localhost:8080/hook",
            "http://api.localhost/hook",
            "http://0.0.0.0/hook",
        ] {
            assert!(refused(raw), "{raw} was admitted");
        }
    }

    #[test]
    fn the_parser_reads_numeric_hosts_as_addresses() {
        for raw in ["http://2130706433/", "http://0x7f000001/", "http://[::ffff:127.0.0.1]/"] {
            let Err(CallbackError::Refused(refusal)) = CallbackUrl::parse(raw, false) else { panic!("{raw}") };
            assert_eq!(refusal.range, "loopback", "{raw}");
        }
    }

    #[test]
    fn only_http_and_https_are_accepted() {
        for raw in ["ftp://example.com/x", "file:///etc/passwd", "gopher://example.com/", "javascript:alert(1)"] {
            assert!(matches!(CallbackUrl::parse(raw, false), Err(CallbackError::Scheme(_))), "{raw}");
        }
        assert!(matches!(CallbackUrl::parse("not a url", false), Err(CallbackError::Malformed(_))));
        assert!(CallbackUrl::parse("https://hooks.example.com/sluice?token=abc", false).is_ok());
        assert!(CallbackUrl::parse("http://93.184.215.14:8080/hook", false).is_ok());
    }

    #[test]
    fn allow_private_admits_loopback_but_not_the_metadata_service() {
        assert!(CallbackUrl::parse("http://127.0.0.1:9000/hook", true).is_ok());
        assert!(CallbackUrl::parse("http://169.254.169.254/", true).is_err());
    }

    #[test]
    fn redacted_form_hides_credentials_and_query() {
        let url = CallbackUrl::parse("https://user:pw@hooks.example.com/in?token=s3cret#x", false).unwrap();
        assert_eq!(url.redacted(), "https://hooks.example.com/in");
    }
}
