//! The mail transport: SMTP (plain, STARTTLS or implicit TLS) or an outbox folder of `.eml` files.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Address, AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use sluice_core::EmailAddress;

use crate::{MailSettings, MailUrl, Notice, NotifyError, SmtpSecurity, SmtpUrl};

/// Sends notices. Cheap to clone (one `Arc`); every clone shares the SMTP connection pool.
#[derive(Clone)]
pub struct Mailer {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Transport,
    from: Mailbox,
    /// The transport URL with the password hidden, for logs and errors.
    describe: String,
    /// `mail.allowed_domains` as [`sluice_core::ascii_domain`] gives them; empty allows every domain.
    allowed_domains: Vec<String>,
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox { dir: PathBuf, files: AsyncFileTransport<Tokio1Executor> },
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer").field("url", &self.inner.describe).field("from", &self.inner.from).finish()
    }
}

/// `Auto-Submitted: auto-generated` (RFC 3834): tells auto-responders not to answer.
#[derive(Clone)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".to_owned())
    }
}

fn smtp_transport(url: &SmtpUrl, timeout: Duration) -> Result<AsyncSmtpTransport<Tokio1Executor>, NotifyError> {
    // The pool spawns its clean-up task on build, which panics outside a runtime: refuse instead.
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(NotifyError::NoRuntime);
    }
    let tls_parameters = || {
        TlsParameters::new(url.host.clone()).map_err(|source| NotifyError::TlsSetup { host: url.host.clone(), source })
    };
    let tls = match url.security {
        SmtpSecurity::Plain => Tls::None,
        SmtpSecurity::StartTls => Tls::Required(tls_parameters()?),
        SmtpSecurity::Tls => Tls::Wrapper(tls_parameters()?),
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(url.host.as_str())
        .port(url.port)
        .timeout(Some(timeout))
        .tls(tls);
    if let Some(credentials) = &url.credentials {
        builder = builder.credentials(Credentials::new(credentials.user.clone(), credentials.password.clone()));
    }
    Ok(builder.build())
}

fn create_outbox(dir: &Path) -> Result<(), NotifyError> {
    std::fs::create_dir_all(dir).map_err(|source| NotifyError::OutboxUnavailable { dir: dir.to_owned(), source })
}

impl Mailer {
    /// Builds the transport the settings name. An outbox folder is created here; an SMTP server is not
    /// contacted until the first [`Mailer::send`] or [`Mailer::check`]. SMTP mailers must be built inside a
    /// Tokio runtime.
    pub fn from_settings(settings: &MailSettings) -> Result<Mailer, NotifyError> {
        if settings.timeout_secs == 0 {
            return Err(NotifyError::InvalidTimeout);
        }
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|source| NotifyError::InvalidSender { from: settings.from.clone(), source })?;
        let transport = match &settings.url {
            MailUrl::Outbox { dir } => {
                create_outbox(dir)?;
                Transport::Outbox { dir: dir.clone(), files: AsyncFileTransport::new(dir) }
            }
            MailUrl::Smtp(url) => Transport::Smtp(smtp_transport(url, Duration::from_secs(settings.timeout_secs))?),
        };
        let allowed_domains = settings
            .allowed_domains
            .iter()
            .map(|domain| {
                sluice_core::ascii_domain(domain.trim().trim_start_matches('@'))
                    .ok_or_else(|| NotifyError::InvalidAllowedDomain { domain: domain.clone() })
            })
            .collect::<Result<Vec<String>, NotifyError>>()?;
        let inner = Inner { transport, from, describe: settings.url.to_string(), allowed_domains };
        Ok(Mailer { inner: Arc::new(inner) })
    }

    /// Whether notices may go to `to`: its domain is in `mail.allowed_domains`, or that list is empty.
    pub fn accepts_recipient(&self, to: &EmailAddress) -> bool {
        let allowed = &self.inner.allowed_domains;
        allowed.is_empty() || allowed.contains(&to.domain())
    }

    /// The transport URL with the password hidden, for logs.
    pub fn describe(&self) -> &str {
        &self.inner.describe
    }

    /// The notice as the RFC 5322 bytes [`Mailer::send`] would deliver (Date aside), for previews and tests.
    pub fn render(&self, notice: &Notice) -> Result<Vec<u8>, NotifyError> {
        Ok(self.message(notice)?.formatted())
    }

    /// Assembles the MIME message of `notice`: From, To, Subject, a stable Message-ID, Date,
    /// `Auto-Submitted`, and a multipart/alternative body (text, then HTML).
    fn message(&self, notice: &Notice) -> Result<Message, NotifyError> {
        let address: Address = notice
            .to()
            .as_str()
            .parse()
            .map_err(|source| NotifyError::InvalidRecipient { to: notice.to().to_string(), source })?;
        Message::builder()
            .from(self.inner.from.clone())
            .to(Mailbox::new(None, address))
            .subject(notice.subject())
            .message_id(Some(notice.message_id()))
            .date_now()
            .header(AutoSubmitted)
            .multipart(MultiPart::alternative_plain_html(notice.text().to_owned(), notice.html().to_owned()))
            .map_err(|source| NotifyError::InvalidMessage { job: notice.job(), source })
    }

    /// Delivers `notice`: hands it to the SMTP server (bounded by `timeout_secs` per step) or writes one
    /// `.eml` file into the outbox. Delivery is at-least-once; the stable Message-ID marks duplicates.
    pub async fn send(&self, notice: &Notice) -> Result<(), NotifyError> {
        let message = self.message(notice)?;
        match &self.inner.transport {
            Transport::Smtp(smtp) => {
                let response = smtp.send(message).await.map_err(|source| NotifyError::Smtp { source })?;
                tracing::debug!(
                    job_id = %notice.job(),
                    code = %response.code(),
                    "notice accepted by the SMTP server"
                );
            }
            Transport::Outbox { dir, files } => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|source| NotifyError::OutboxUnavailable { dir: dir.clone(), source })?;
                let id =
                    files.send(message).await.map_err(|source| NotifyError::Outbox { dir: dir.clone(), source })?;
                tracing::debug!(job_id = %notice.job(), file = %format!("{id}.eml"), "notice written to the outbox");
            }
        }
        Ok(())
    }

    /// Readiness probe: opens (or reuses) an SMTP connection and sends NOOP, or checks that the outbox folder
    /// exists and takes a file.
    pub async fn check(&self) -> Result<(), NotifyError> {
        match &self.inner.transport {
            Transport::Smtp(smtp) => match smtp.test_connection().await {
                Ok(true) => Ok(()),
                Ok(false) => Err(NotifyError::SmtpNotReady { server: self.inner.describe.clone() }),
                Err(source) => Err(NotifyError::Smtp { source }),
            },
            Transport::Outbox { dir, .. } => {
                let unavailable = |source| NotifyError::OutboxUnavailable { dir: dir.clone(), source };
                tokio::fs::create_dir_all(dir).await.map_err(unavailable)?;
                let probe = dir.join(format!(".sluice-ready-{}", std::process::id()));
                tokio::fs::write(&probe, b"ok").await.map_err(unavailable)?;
                tokio::fs::remove_file(&probe).await.map_err(unavailable)
            }
        }
    }
}
