//! The `[reports]` configuration section.

use std::path::PathBuf;

use serde::Deserialize;

/// The default for [`ReportSettings::max_rows`].
pub const DEFAULT_MAX_ROWS: u64 = 1_000_000;
/// The default for [`ReportSettings::max_columns`].
pub const DEFAULT_MAX_COLUMNS: usize = 200;
/// The default for [`ReportSettings::max_cell_bytes`].
pub const DEFAULT_MAX_CELL_BYTES: usize = 64 * 1024;

/// How numbers in the data write their decimal separator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Locale {
    /// Detect it from the data (see the crate documentation for the rule); `Dot` when nothing decides.
    #[default]
    Auto,
    /// `1,234.56`: a decimal point, commas (or spaces) group thousands.
    Dot,
    /// `1.234,56`: a decimal comma, dots (or spaces) group thousands (Brazil, most of Europe).
    Comma,
}

impl Locale {
    /// The decimal separator of a decided locale (`Auto` counts as `Dot`).
    pub fn decimal_separator(self) -> char {
        match self {
            Self::Comma => ',',
            Self::Auto | Self::Dot => '.',
        }
    }

    /// The thousands separator used when formatting numbers in this locale.
    pub fn group_separator(self) -> char {
        match self {
            Self::Comma => '.',
            Self::Auto | Self::Dot => ',',
        }
    }
}

/// Settings of the `[reports]` configuration section: limits, the number locale and the template folder.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportSettings {
    /// The most data rows (header excluded) a report input may hold.
    pub max_rows: u64,
    /// The most columns a report input may hold.
    pub max_columns: usize,
    /// The largest single cell, in bytes.
    pub max_cell_bytes: usize,
    /// The decimal separator of numbers in the data; `auto` detects it.
    pub locale: Locale,
    /// A folder holding `report.typ` and/or `report.html`, and fonts in `fonts/`; `None` uses `config/templates/`
    /// when it exists and the embedded defaults otherwise (see [`ReportSettings::templates`]).
    pub templates_dir: Option<PathBuf>,
}

impl Default for ReportSettings {
    fn default() -> Self {
        Self {
            max_rows: DEFAULT_MAX_ROWS,
            max_columns: DEFAULT_MAX_COLUMNS,
            max_cell_bytes: DEFAULT_MAX_CELL_BYTES,
            locale: Locale::Auto,
            templates_dir: None,
        }
    }
}

impl ReportSettings {
    /// The folder templates are loaded from: the configured one, else `config/templates` when it exists.
    pub fn templates_dir(&self) -> Option<PathBuf> {
        match &self.templates_dir {
            Some(dir) => Some(dir.clone()),
            None => {
                let default = PathBuf::from("config/templates");
                default.is_dir().then_some(default)
            }
        }
    }

    /// Loads the templates these settings name (see [`crate::Templates::load`]).
    pub fn templates(&self) -> Result<crate::Templates, crate::ReportError> {
        crate::Templates::load(self.templates_dir().as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deserializes_with_defaults_and_rejects_unknown_keys() {
        let settings: ReportSettings = serde_json::from_str(r#"{"max_rows": 10, "locale": "comma"}"#).unwrap();
        assert_eq!(settings.max_rows, 10);
        assert_eq!(settings.max_columns, DEFAULT_MAX_COLUMNS);
        assert_eq!(settings.locale, Locale::Comma);
        assert!(serde_json::from_str::<ReportSettings>(r#"{"max_row": 10}"#).is_err());
    }
}
