//! What the convert stage needs to render reports.

use sluice_report::{ReportError, ReportSettings, Templates};

/// The `[reports]` settings with their templates loaded once, at start-up, so that a broken template is an
/// error when the service starts rather than a rejected file later.
#[derive(Clone, Debug)]
pub struct Reports {
    /// Limits and the number locale.
    pub settings: ReportSettings,
    /// The PDF and HTML templates.
    pub templates: Templates,
}

impl Reports {
    /// Loads the templates the settings name (the configured folder, `config/templates`, or the embedded
    /// defaults).
    pub fn load(settings: ReportSettings) -> Result<Self, ReportError> {
        let templates = settings.templates()?;
        Ok(Self { settings, templates })
    }
}
