//! The `[mail]` config section and its transport URL, parsed once at the edge.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use percent_encoding::percent_decode_str;
use serde::Deserialize;

/// The `[mail]` section of the configuration.
///
/// ```toml
/// [mail]
/// url = "smtp://127.0.0.1:1025"        # or "file://./data/outbox", "smtps://user:pass@mail.example.com"
/// from = "sluice <sluice@localhost>"
/// timeout_secs = 20
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailSettings {
    /// Where notices go: an outbox folder of `.eml` files or an SMTP server.
    #[serde(default = "default_url")]
    pub url: MailUrl,
    /// The `From` mailbox, e.g. `sluice <sluice@localhost>`; checked when the [`crate::Mailer`] is built.
    #[serde(default = "default_from")]
    pub from: String,
    /// Bound on connecting to the SMTP server and on each SMTP command, in seconds (at least 1).
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Domains notices may go to (exact, case-insensitive); empty allows every domain. Set it on a gateway
    /// open to the world, so it cannot be used to send mail to anyone.
    #[serde(default)]
    pub allowed_domains: Vec<String>,
}

/// The default outbox folder, relative to the working directory.
pub const DEFAULT_OUTBOX: &str = "./data/outbox";

fn default_url() -> MailUrl {
    MailUrl::Outbox { dir: PathBuf::from(DEFAULT_OUTBOX) }
}

fn default_from() -> String {
    "sluice <sluice@localhost>".to_owned()
}

fn default_timeout_secs() -> u64 {
    20
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            url: default_url(),
            from: default_from(),
            timeout_secs: default_timeout_secs(),
            allowed_domains: Vec::new(),
        }
    }
}

/// A parsed mail transport URL.
///
/// | form | meaning |
/// | --- | --- |
/// | `file://./data/outbox`, `file:///var/mail/outbox` | write one `.eml` file per notice into the folder |
/// | `smtp://127.0.0.1:1025` | plain SMTP (a local catcher such as MailHog); port 25 by default |
/// | `smtp://user:pass@host:587?tls=starttls` | SMTP upgraded with STARTTLS, which is then required; port 587 by default |
/// | `smtps://user:pass@host:465` | SMTP inside TLS from the first byte; port 465 by default |
///
/// User and password are percent-decoded. Credentials are refused on an unencrypted connection unless the
/// host is a loopback address. `Display` and `Debug` never show the password.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum MailUrl {
    /// A local folder of `.eml` files.
    Outbox {
        /// The folder, as given (relative paths are relative to the working directory).
        dir: PathBuf,
    },
    /// An SMTP server.
    Smtp(SmtpUrl),
}

/// Where and how to reach an SMTP server.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpUrl {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Transport security.
    pub security: SmtpSecurity,
    /// Login, when the server wants one.
    pub credentials: Option<SmtpCredentials>,
}

/// How the SMTP connection is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// No encryption (`smtp://`, `tls=none`): only for local catchers.
    Plain,
    /// STARTTLS, required (`smtp://...?tls=starttls`): the mail is never sent if the upgrade fails.
    StartTls,
    /// Implicit TLS (`smtps://`).
    Tls,
}

/// SMTP login; `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpCredentials {
    /// The user name.
    pub user: String,
    /// The password.
    pub password: String,
}

impl fmt::Debug for SmtpCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpCredentials").field("user", &self.user).field("password", &"***").finish()
    }
}

/// Why a mail URL was refused; the message names the problem, never the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid mail url: {reason}")]
pub struct MailUrlError {
    reason: String,
}

impl MailUrlError {
    fn new(reason: impl Into<String>) -> Self {
        Self { reason: reason.into() }
    }
}

fn decode(part: &str, what: &str) -> Result<String, MailUrlError> {
    percent_decode_str(part)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| MailUrlError::new(format!("the {what} is not valid UTF-8 once percent-decoded")))
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().map(|ip| ip.is_loopback()).unwrap_or(false)
}

fn parse_outbox(rest: &str) -> Result<MailUrl, MailUrlError> {
    // `file://localhost/abs` is the long form of `file:///abs`.
    let rest = rest.strip_prefix("localhost").filter(|abs| abs.starts_with('/')).unwrap_or(rest);
    if rest.is_empty() {
        return Err(MailUrlError::new("a file:// url needs a folder, e.g. file://./data/outbox"));
    }
    if !rest.starts_with('/') && !rest.starts_with('.') {
        return Err(MailUrlError::new(format!(
            "the file:// url names a host ({:?}); use file://./relative/dir or file:///absolute/dir",
            rest.split('/').next().unwrap_or_default()
        )));
    }
    Ok(MailUrl::Outbox { dir: PathBuf::from(decode(rest, "folder")?) })
}

fn parse_host_port(authority: &str) -> Result<(String, Option<u16>), MailUrlError> {
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) =
            bracketed.split_once(']').ok_or_else(|| MailUrlError::new("an IPv6 host is missing its closing ']'"))?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(MailUrlError::new(format!("{host:?} is not an IPv6 address")));
        }
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':').ok_or_else(|| MailUrlError::new("junk after the IPv6 host"))?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(MailUrlError::new("the url names no host"));
    }
    if !authority.starts_with('[')
        && !host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    {
        return Err(MailUrlError::new(format!("{host:?} is not a host name")));
    }
    let port = match port {
        None => None,
        Some(port) => match port.parse::<u16>() {
            Ok(port) if port > 0 => Some(port),
            _ => return Err(MailUrlError::new(format!("the port {port:?} is not a number from 1 to 65535"))),
        },
    };
    Ok((host.to_owned(), port))
}

fn parse_smtp(rest: &str, implicit_tls: bool) -> Result<MailUrl, MailUrlError> {
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let authority = match before_query.split_once('/') {
        Some((authority, "")) => authority,
        Some(_) => return Err(MailUrlError::new("an smtp url takes no path")),
        None => before_query,
    };
    let (userinfo, host_port) = match authority.rsplit_once('@') {
        Some((userinfo, host_port)) => (Some(userinfo), host_port),
        None => (None, authority),
    };
    let credentials = match userinfo {
        None => None,
        Some(userinfo) => {
            let (user, password) = userinfo
                .split_once(':')
                .ok_or_else(|| MailUrlError::new("credentials must be given as user:password@host"))?;
            let user = decode(user, "user name")?;
            if user.is_empty() {
                return Err(MailUrlError::new("the user name is empty"));
            }
            Some(SmtpCredentials { user, password: decode(password, "password")? })
        }
    };
    let (host, port) = parse_host_port(host_port)?;

    let mut security = if implicit_tls { SmtpSecurity::Tls } else { SmtpSecurity::Plain };
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match (key, value, implicit_tls) {
            ("tls", "none", false) => security = SmtpSecurity::Plain,
            ("tls", "starttls", false) => security = SmtpSecurity::StartTls,
            ("tls", _, true) => {
                return Err(MailUrlError::new("smtps:// always uses TLS; the tls option is for smtp:// only"));
            }
            ("tls", other, false) => {
                return Err(MailUrlError::new(format!("tls={other:?} is not one of none, starttls")));
            }
            (other, _, _) => return Err(MailUrlError::new(format!("unknown option {other:?} (known: tls)"))),
        }
    }
    if security == SmtpSecurity::Plain && credentials.is_some() && !is_loopback(&host) {
        return Err(MailUrlError::new("credentials would travel unencrypted; add ?tls=starttls or use smtps://"));
    }
    let port = port.unwrap_or(match security {
        SmtpSecurity::Plain => 25,
        SmtpSecurity::StartTls => 587,
        SmtpSecurity::Tls => 465,
    });
    Ok(MailUrl::Smtp(SmtpUrl { host, port, security, credentials }))
}

impl FromStr for MailUrl {
    type Err = MailUrlError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let raw = raw.trim();
        if raw.chars().any(char::is_control) {
            return Err(MailUrlError::new("the url contains control characters"));
        }
        let Some((scheme, rest)) = raw.split_once("://") else {
            return Err(MailUrlError::new(
                "expected a url such as file://./data/outbox, smtp://127.0.0.1:1025 or smtps://user:pass@host",
            ));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "file" => parse_outbox(rest),
            "smtp" => parse_smtp(rest, false),
            "smtps" => parse_smtp(rest, true),
            other => Err(MailUrlError::new(format!("unknown scheme {other:?} (known: file, smtp, smtps)"))),
        }
    }
}

impl TryFrom<String> for MailUrl {
    type Error = MailUrlError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl fmt::Display for MailUrl {
    /// The URL with the password replaced by `***`, fit for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Outbox { dir } => write!(f, "file://{}", dir.display()),
            Self::Smtp(smtp) => fmt::Display::fmt(smtp, f),
        }
    }
}

impl fmt::Debug for MailUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MailUrl({self})")
    }
}

impl fmt::Display for SmtpUrl {
    /// The URL with the password replaced by `***`, fit for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.security == SmtpSecurity::Tls { "smtps" } else { "smtp" };
        write!(f, "{scheme}://")?;
        if let Some(credentials) = &self.credentials {
            write!(f, "{}:***@", credentials.user)?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)?;
        } else {
            write!(f, "{}:{}", self.host, self.port)?;
        }
        if self.security == SmtpSecurity::StartTls {
            f.write_str("?tls=starttls")?;
        }
        Ok(())
    }
}

impl fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SmtpUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smtp(raw: &str) -> SmtpUrl {
        match raw.parse::<MailUrl>() {
            Ok(MailUrl::Smtp(smtp)) => smtp,
            other => panic!("{raw}: {other:?}"),
        }
    }

    fn refused(raw: &str) -> String {
        match raw.parse::<MailUrl>() {
            Err(error) => error.to_string(),
            Ok(url) => panic!("{raw} was accepted as {url:?}"),
        }
    }

    #[test]
    fn outbox_forms() {
        assert_eq!("file://./data/outbox".parse(), Ok(MailUrl::Outbox { dir: "./data/outbox".into() }));
        assert_eq!("file:///var/mail/x".parse(), Ok(MailUrl::Outbox { dir: "/var/mail/x".into() }));
        assert_eq!("file://localhost/var/mail".parse(), Ok(MailUrl::Outbox { dir: "/var/mail".into() }));
        assert_eq!("FILE:///a%20b".parse(), Ok(MailUrl::Outbox { dir: "/a b".into() }));
        assert!(refused("file://").contains("needs a folder"));
        assert!(refused("file://server/share").contains("names a host"));
    }

    #[test]
    fn smtp_forms() {
        let plain = smtp("smtp://127.0.0.1:1025");
        assert_eq!((plain.host.as_str(), plain.port, plain.security), ("127.0.0.1", 1025, SmtpSecurity::Plain));
        assert_eq!(plain.credentials, None);
        assert_eq!(smtp("smtp://mailhog").port, 25);

        let starttls = smtp("smtp://ana%40example.com:p%3Ass%2Fw@mail.example.com?tls=starttls");
        assert_eq!((starttls.port, starttls.security), (587, SmtpSecurity::StartTls));
        let credentials = starttls.credentials.clone().unwrap();
        assert_eq!((credentials.user.as_str(), credentials.password.as_str()), ("ana@example.com", "p:ss/w"));

        let tls = smtp("smtps://u:p@mail.example.com");
        assert_eq!((tls.port, tls.security), (465, SmtpSecurity::Tls));
        assert_eq!(smtp("smtp://[::1]:2525").host, "::1");
        assert_eq!(smtp("smtp://u:p@localhost:1025").credentials.map(|c| c.user), Some("u".into()));
    }

    #[test]
    fn display_hides_the_password() {
        let url: MailUrl = "smtp://ana:hunter2@mail.example.com:587?tls=starttls".parse().unwrap();
        let shown = format!("{url} {url:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("smtp://ana:***@mail.example.com:587?tls=starttls"), "{shown}");
    }

    #[test]
    fn bad_urls_name_the_problem() {
        assert!(refused("127.0.0.1:1025").contains("expected a url"));
        assert!(refused("http://x").contains("unknown scheme \"http\""));
        assert!(refused("smtp://host:0").contains("port \"0\""));
        assert!(refused("smtp://host:99999").contains("port"));
        assert!(refused("smtp://host:abc").contains("port"));
        assert!(refused("smtp://:25").contains("no host"));
        assert!(refused("smtp://host?tls=maybe").contains("tls=\"maybe\""));
        assert!(refused("smtp://host?pool=3").contains("unknown option \"pool\""));
        assert!(refused("smtps://host?tls=starttls").contains("always uses TLS"));
        assert!(refused("smtp://host/ehlo").contains("no path"));
        assert!(refused("smtp://user@host").contains("user:password"));
        assert!(refused("smtp://u:secret@mail.example.com").contains("unencrypted"));
        assert!(!refused("smtp://u:secret@mail.example.com").contains("secret"));
        assert!(refused("smtp://ho st").contains("not a host name"));
        assert!(refused("smtp://ho\nst").contains("control"));
    }

    #[test]
    fn settings_deserialize_with_defaults_and_reject_unknown_keys() {
        #[derive(Deserialize)]
        struct Wrapper {
            mail: MailSettings,
        }
        let parsed: Wrapper = serde_json::from_str(r#"{"mail":{"url":"smtp://127.0.0.1:1025"}}"#).unwrap();
        assert_eq!(parsed.mail.from, "sluice <sluice@localhost>");
        assert_eq!(parsed.mail.timeout_secs, 20);
        let unknown = serde_json::from_str::<Wrapper>(r#"{"mail":{"url":"file://./x","form":"a@b"}}"#);
        assert!(unknown.is_err());
        let bad = serde_json::from_str::<Wrapper>(r#"{"mail":{"url":"smtp://h:0"}}"#).err().unwrap().to_string();
        assert!(bad.contains("invalid mail url"), "{bad}");
        assert_eq!(MailSettings::default().url, MailUrl::Outbox { dir: DEFAULT_OUTBOX.into() });
    }
}
