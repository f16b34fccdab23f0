//! The two user-editable templates: `report.typ` (typst, for the PDF) and `report.html` (the HTML layout).

use std::path::Path;

use crate::error::ReportError;
use crate::html;

const DEFAULT_TYPST: &str = include_str!("../../../config/templates/report.typ");
const DEFAULT_HTML: &str = include_str!("../../../config/templates/report.html");

/// The PDF and HTML templates of reports.
///
/// `report.typ` reads the report's data with `json("data.json")` (see the default for every field); it is
/// compiled with the embedded fonts only, and may not read any other file. `report.html` is HTML with
/// `{{slot}}`s that are replaced by escaped text or by ready-made, escaped HTML fragments (tables, charts); the
/// known slots are `title`, `source`, `generated`, `format`, `rows`, `column_count`, `locale`, `columns`,
/// `numeric`, `text`, `dates`, `charts`, `preview` and `notes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Templates {
    typst: String,
    html: String,
}

impl Templates {
    /// The default templates compiled into the crate (copies of `config/templates/report.{typ,html}`).
    pub fn embedded() -> Self {
        Self { typst: DEFAULT_TYPST.to_owned(), html: DEFAULT_HTML.to_owned() }
    }

    /// Loads `report.typ` and `report.html` from `dir`, each falling back to the embedded default when the file
    /// does not exist; `None` gives the embedded defaults. A missing or unreadable folder is an error, and so is
    /// an HTML layout using an unknown slot.
    pub fn load(dir: Option<&Path>) -> Result<Self, ReportError> {
        let Some(dir) = dir else { return Ok(Self::embedded()) };
        if let Err(source) = std::fs::read_dir(dir) {
            return Err(ReportError::Template { path: dir.to_path_buf(), source });
        }
        let read = |name: &str, default: &str| -> Result<String, ReportError> {
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => Ok(text),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(default.to_owned()),
                Err(source) => Err(ReportError::Template { path, source }),
            }
        };
        Self::from_strings(read("report.typ", DEFAULT_TYPST)?, read("report.html", DEFAULT_HTML)?)
    }

    /// Templates from text; the HTML layout's slots are checked.
    pub fn from_strings(typst: String, html: String) -> Result<Self, ReportError> {
        html::slots_of(&html).map_err(|reason| ReportError::TemplateInvalid { name: "report.html", reason })?;
        Ok(Self { typst, html })
    }

    /// The text of the PDF template (`report.typ`).
    pub fn typst(&self) -> &str {
        &self.typst
    }

    /// The text of the HTML layout (`report.html`).
    pub fn html(&self) -> &str {
        &self.html
    }
}

impl Default for Templates {
    fn default() -> Self {
        Self::embedded()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_templates_pass_the_checks_a_loaded_folder_gets() {
        // `config/templates` is both the built-in default and the folder loaded at start-up from the repository.
        let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/templates");
        assert_eq!(Templates::load(Some(&folder)).unwrap(), Templates::embedded());
    }
}
