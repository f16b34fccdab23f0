use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One recipient address, checked once at the edge: a single `local@domain` with no display name, no
/// whitespace or control characters and no list separators, so it can never smuggle extra headers or
/// recipients into a mail. An internationalised domain (`ana@bücher.de`) is kept in its ASCII form
/// (`ana@xn--bcher-kva.de`), which every SMTP server takes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, format = "email", example = "ana@example.com")]
pub struct EmailAddress(String);

/// Why a string is not one acceptable e-mail address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailAddressError {
    /// Nothing was given.
    #[error("the address is empty")]
    Empty,
    /// Longer than SMTP allows (254 octets).
    #[error("the address is longer than 254 characters")]
    TooLong,
    /// More than one address, or a display name.
    #[error("give exactly one address, without a display name")]
    NotSingle,
    /// A control character, CR/LF or whitespace.
    #[error("the address contains whitespace or control characters")]
    ControlCharacters,
    /// Not of the form `local@domain`.
    #[error("the address is not of the form name@domain")]
    Malformed,
}

impl EmailAddress {
    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The domain part, lower-cased, for allow-lists.
    pub fn domain(&self) -> String {
        self.0.rsplit_once('@').map(|(_, domain)| domain.to_ascii_lowercase()).unwrap_or_default()
    }
}

fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c)
}

fn is_valid_local(local: &str) -> bool {
    !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.chars().all(|c| c == '.' || is_atext(c))
}

/// `domain` as it travels in mail: an internationalised name in its ASCII (punycode) form, lower-cased;
/// `None` when it is no valid domain name. Also normalises `mail.allowed_domains`, so both sides compare alike.
pub fn ascii_domain(domain: &str) -> Option<String> {
    let ascii =
        if domain.is_ascii() { domain.to_ascii_lowercase() } else { idna::domain_to_ascii_strict(domain).ok()? };
    is_valid_domain(&ascii).then_some(ascii)
}

fn is_valid_domain(domain: &str) -> bool {
    !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

impl FromStr for EmailAddress {
    type Err = EmailAddressError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let s = raw.trim_matches(|c| c == ' ' || c == '\t');
        if s.is_empty() {
            return Err(EmailAddressError::Empty);
        }
        if s.len() > 254 {
            return Err(EmailAddressError::TooLong);
        }
        if s.chars().any(char::is_control) {
            return Err(EmailAddressError::ControlCharacters);
        }
        if s.contains([',', ';', '<', '>', '"', '(', ')']) || s.matches('@').count() > 1 {
            return Err(EmailAddressError::NotSingle);
        }
        if s.chars().any(char::is_whitespace) {
            return Err(EmailAddressError::ControlCharacters);
        }
        let (local, domain) = s.split_once('@').ok_or(EmailAddressError::Malformed)?;
        if !is_valid_local(local) {
            return Err(EmailAddressError::Malformed);
        }
        if domain.is_ascii() {
            // As given: the case of an ASCII domain is the sender's to keep.
            return if is_valid_domain(domain) { Ok(Self(s.to_owned())) } else { Err(EmailAddressError::Malformed) };
        }
        let domain = ascii_domain(domain).ok_or(EmailAddressError::Malformed)?;
        let address = format!("{local}@{domain}");
        if address.len() > 254 {
            return Err(EmailAddressError::TooLong);
        }
        Ok(Self(address))
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = EmailAddressError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<EmailAddress> for String {
    fn from(address: EmailAddress) -> Self {
        address.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses() {
        for ok in ["a@example.com", "first.last+tag@mail.example.co.uk", "dev@localhost"] {
            assert!(ok.parse::<EmailAddress>().is_ok(), "{ok}");
        }
        let address: EmailAddress = "Ana@Example.COM".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(address.domain(), "example.com");
    }

    #[test]
    fn rejects_header_injection_and_lists() {
        use EmailAddressError::*;
        let cases = [
            ("", Empty),
            ("a@example.com\r\nBcc: victim@example.com", ControlCharacters),
            ("a@example.com\nx", ControlCharacters),
            ("a@example.com, b@example.com", NotSingle),
            ("a@example.com;b@example.com", NotSingle),
            ("Ana <a@example.com>", NotSingle),
            ("a@b@example.com", NotSingle),
            ("no-at-sign", Malformed),
            ("a@-bad-.com", Malformed),
            ("a..b@example.com", Malformed),
            ("@example.com", Malformed),
        ];
        for (input, expected) in cases {
            assert_eq!(input.parse::<EmailAddress>().err(), Some(expected), "{input:?}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(long.parse::<EmailAddress>().err(), Some(TooLong));
    }

    #[test]
    fn internationalised_domains_travel_as_punycode() {
        let address: EmailAddress = "ana@Bücher.de".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(address.as_str(), "ana@xn--bcher-kva.de");
        assert_eq!(address.domain(), "xn--bcher-kva.de");
        let japanese: EmailAddress = "info@例え.jp".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(japanese.as_str(), "info@xn--r8jz45g.jp");
        assert_eq!(ascii_domain("BÜCHER.de").as_deref(), Some("xn--bcher-kva.de"));
        assert_eq!(ascii_domain("Example.COM").as_deref(), Some("example.com"));
        // A non-ASCII local part needs SMTPUTF8, which not every server speaks; invalid names stay refused.
        for refused in ["jörg@example.com", "a@bü cher.de", "a@bücher_.de", "a@-bücher.de", "a@bücher..de"] {
            assert!(refused.parse::<EmailAddress>().is_err(), "{refused}");
        }
    }
}
