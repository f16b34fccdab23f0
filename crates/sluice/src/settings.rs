//! The whole configuration: embedded defaults, then a file, then `SLUICE__…` environment variables.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::bail;
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;
use sluice_convert::ConvertSettings;
use sluice_core::{VariantName, VariantSpec};
use sluice_gateway::GatewaySettings;
use sluice_notify::MailSettings;
use sluice_pipeline::{PipelineSettings, WebhookSettings};
use sluice_report::ReportSettings;
use sluice_storage::StorageSettings;

/// The embedded defaults: `config/default.toml`, so the binary runs from anywhere.
pub const DEFAULT_CONFIG: &str = include_str!("../../../config/default.toml");

/// Every section, each owned by the crate that uses it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `[server]`: the gateway.
    pub server: GatewaySettings,
    /// `[storage]`: originals, outputs, records.
    pub storage: StorageSettings,
    /// `[mail]`: completion notices.
    pub mail: MailSettings,
    /// `[convert]`: variants and limits.
    pub convert: ConvertSettings,
    /// `[reports]`: limits and templates of CSV and JSON reports.
    pub reports: ReportSettings,
    /// `[pipeline]`: queues, workers, retries.
    pub pipeline: PipelineSettings,
    /// `[webhooks]`: signed callbacks when jobs end.
    #[serde(default)]
    pub webhooks: WebhookSettings,
    /// `[log]`: log format and level.
    #[serde(default)]
    pub log: LogSettings,
}

/// The `[log]` section.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// `text` for people, `json` for log pipelines.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `sluice=debug`; `RUST_LOG` takes precedence.
    pub level: String,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self { format: LogFormat::Text, level: "info".to_owned() }
    }
}

impl Settings {
    /// Loads the defaults, then `file` (if any), then the process environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        Self::load_with_env(file, Env::prefixed("SLUICE__").split("__"))
    }

    /// Loads the defaults, then `file`, then the given environment provider (tests pass their own).
    pub fn load_with_env(file: Option<&Path>, env: Env) -> anyhow::Result<Self> {
        let mut overrides = Figment::new();
        if let Some(path) = file {
            if !path.is_file() {
                bail!("config file {} does not exist", path.display());
            }
            overrides = overrides.merge(Toml::file_exact(path));
        }
        let overrides = overrides.merge(env);
        let merged = Figment::from(Toml::string(DEFAULT_CONFIG)).merge(overrides.clone());
        let mut settings: Settings = merged.extract().map_err(describe_figment_error)?;

        // Variants are a set, not a merge: naming any variant replaces the defaults.
        if overrides.find_value("convert.variants").is_ok() {
            settings.convert.variants = overrides
                .extract_inner::<BTreeMap<VariantName, VariantSpec>>("convert.variants")
                .map_err(describe_figment_error)?;
        }
        settings.validate()?;
        Ok(settings)
    }

    /// A few lines saying where things go, without secrets (for `sluice check`).
    pub fn summary(&self) -> String {
        let variants: Vec<String> = self
            .convert
            .variants
            .iter()
            .map(|(name, spec)| {
                format!("{name} {}x{} {:?} {:?} q{}", spec.width, spec.height, spec.fit, spec.format, spec.quality)
            })
            .collect();
        let templates = self
            .reports
            .templates_dir()
            .map_or_else(|| "built-in templates".to_owned(), |dir| format!("templates from {}", dir.display()));
        let reports = format!(
            "PDF and HTML, up to {} rows and {} columns, numbers {:?}, {templates}",
            self.reports.max_rows, self.reports.max_columns, self.reports.locale
        );
        let access = match (self.server.api_tokens.len(), self.server.signing_key.is_some()) {
            (0, _) => "open (no server.api_tokens)".to_owned(),
            (tokens, keyed) => format!(
                "{tokens} token(s); links signed with {}, valid {} s",
                if keyed { "server.signing_key" } else { "a key derived from the tokens" },
                self.server.link_ttl_secs
            ),
        };
        format!(
            "configuration OK\nlisten:     {}\naccess:     {access}\npublic url: {}\nstorage:    {}\nmail:       {} (from {})\nvariants:   {}\nreports:    {}\nworkers:    {}\nwebhooks:   {}",
            self.server.listen,
            self.server.public_url,
            self.storage.describe(),
            self.mail.url,
            self.mail.from,
            variants.join(", "),
            reports,
            self.pipeline.effective_workers(),
            webhooks_summary(&self.webhooks),
        )
    }

    /// Checks what serde cannot: ranges and relations between keys.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.server.validate().map_err(anyhow::Error::msg)?;
        self.storage.validate().map_err(anyhow::Error::msg)?;
        self.pipeline.validate().map_err(anyhow::Error::msg)?;
        self.webhooks.validate().map_err(anyhow::Error::msg)?;
        if self.convert.variants.is_empty() {
            bail!("convert.variants: at least one variant must be configured");
        }
        if self.convert.max_pixels == 0 {
            bail!("convert.max_pixels must be at least 1");
        }
        if self.reports.max_rows == 0 || self.reports.max_columns == 0 || self.reports.max_cell_bytes == 0 {
            bail!("reports.max_rows, reports.max_columns and reports.max_cell_bytes must be at least 1");
        }
        Ok(())
    }
}

/// The webhook line of `sluice check`: whether they are enabled, the default callback, never the secret.
fn webhooks_summary(webhooks: &WebhookSettings) -> String {
    if webhooks.secret.is_none() {
        return "off (webhooks.secret not set)".to_owned();
    }
    let default = match webhooks.default_url.as_deref().map(|url| sluice_pipeline::CallbackUrl::parse(url, true)) {
        Some(Ok(url)) => format!("default {}", url.redacted()),
        Some(Err(_)) | None => "per upload (callback_url)".to_owned(),
    };
    let private = if webhooks.allow_private { ", private addresses allowed" } else { "" };
    format!("on, {default}, secret set{private}")
}

/// Figment's errors name the key; keep every one of them (there may be several) and drop the profile prefix.
fn describe_figment_error(error: figment::Error) -> anyhow::Error {
    let lines: Vec<String> = error
        .into_iter()
        .map(|error| {
            let path = error.path.join(".");
            let kind = error.kind.to_string();
            let origin = error.metadata.as_ref().map(|meta| format!(" (from {})", meta.name)).unwrap_or_default();
            if path.is_empty() {
                format!("config: {kind}{origin}")
            } else {
                format!("config key {path}: {kind}{origin}")
            }
        })
        .collect();
    anyhow::Error::msg(lines.join("\n")).context("invalid configuration")
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail closures return figment::Error
mod tests {
    use super::*;

    #[test]
    fn defaults_load() {
        figment::Jail::expect_with(|_jail| {
            let settings = Settings::load(None).unwrap();
            assert_eq!(settings.server.listen.to_string(), "127.0.0.1:8080");
            assert_eq!(settings.server.max_upload_bytes, 104_857_600);
            let names: Vec<&str> = settings.convert.variants.keys().map(VariantName::as_str).collect();
            assert_eq!(names, ["large", "medium", "thumb"]);
            assert_eq!(settings.storage.url, "./data/storage");
            assert!(settings.storage.fsync, "a local folder flushes every write by default");
            Ok(())
        });
    }

    #[test]
    fn environment_overrides_the_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("sluice.toml", "[server]\nlisten = \"127.0.0.1:9000\"\nmax_upload_bytes = 10\n")?;
            jail.set_env("SLUICE__SERVER__LISTEN", "127.0.0.1:9999");
            jail.set_env("SLUICE__STORAGE__S3__REGION", "eu-west-1");
            jail.set_env("SLUICE__STORAGE__FSYNC", "false");
            let settings = Settings::load(Some(Path::new("sluice.toml"))).unwrap();
            assert!(!settings.storage.fsync);
            assert_eq!(settings.server.listen.to_string(), "127.0.0.1:9999");
            assert_eq!(settings.server.max_upload_bytes, 10);
            assert_eq!(settings.storage.s3.region.as_deref(), Some("eu-west-1"));
            assert_eq!(settings.convert.variants.len(), 3, "no variant named: the defaults stay");
            Ok(())
        });
    }

    #[test]
    fn secrets_come_from_the_environment_and_stay_out_of_the_summary() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("SLUICE__SERVER__API_TOKENS", "[\"token-one-0123456789\",\"token-two-0123456789\"]");
            let settings = Settings::load(None).unwrap();
            assert_eq!(settings.server.api_tokens.len(), 2);
            assert_eq!(settings.server.api_tokens[1].expose(), "token-two-0123456789");
            let shown = format!("{}\n{settings:?}", settings.summary());
            assert!(!shown.contains("token-one"), "{shown}");
            assert!(shown.contains("2 token(s)"), "{shown}");
            Ok(())
        });
    }

    #[test]
    fn naming_a_variant_replaces_the_set() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "sluice.toml",
                "[convert.variants.tiny]\nwidth = 64\nheight = 64\nfit = \"cover\"\nformat = \"png\"\nquality = 90\n",
            )?;
            let settings = Settings::load(Some(Path::new("sluice.toml"))).unwrap();
            let names: Vec<&str> = settings.convert.variants.keys().map(VariantName::as_str).collect();
            assert_eq!(names, ["tiny"]);

            jail.set_env("SLUICE__CONVERT__VARIANTS__ICON__WIDTH", "32");
            jail.set_env("SLUICE__CONVERT__VARIANTS__ICON__HEIGHT", "32");
            let settings = Settings::load(None).unwrap();
            let names: Vec<&str> = settings.convert.variants.keys().map(VariantName::as_str).collect();
            assert_eq!(names, ["icon"]);
            Ok(())
        });
    }

    #[test]
    fn bad_values_name_their_key() {
        figment::Jail::expect_with(|jail| {
            let cases = [
                ("[server]\nmax_upload_bytes = \"lots\"\n", "server.max_upload_bytes"),
                ("[server]\nlisten_on = \"x\"\n", "listen_on"),
                ("[server]\nlisten = \"nowhere\"\n", "server.listen"),
                ("[server]\npublic_url = \"ftp://x\"\n", "server.public_url"),
                ("[mail]\nurl = \"gopher://x\"\n", "mail.url"),
                ("[convert.variants.bad]\nwidth = 0\nheight = 10\n", "convert.variants"),
                ("[pipeline]\nqueue_capacity = 0\n", "pipeline.queue_capacity"),
                ("[server]\napi_tokens = [\"short\"]\n", "server.api_tokens"),
                ("[server.rate_limit]\nuploads_per_minute = 5\nburst = 0\n", "server.rate_limit.burst"),
                ("[webhooks]\ndefault_url = \"https://example.com/\"\n", "webhooks.secret"),
                ("[webhooks]\nsecret = \"k\"\ndefault_url = \"http://169.254.169.254/\"\n", "webhooks.default_url"),
            ];
            for (toml, key) in cases {
                jail.create_file("bad.toml", toml)?;
                let error = format!("{:#}", Settings::load(Some(Path::new("bad.toml"))).unwrap_err());
                assert!(error.contains(key), "{key}: {error}");
            }
            assert!(Settings::load(Some(Path::new("missing.toml"))).is_err());
            Ok(())
        });
    }
}
