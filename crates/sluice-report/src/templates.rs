//! The two user-editable templates: `report.typ` (typst, for the PDF) and `report.html` (the HTML layout).

use std::path::Path;
use std::sync::Arc;

use crate::error::ReportError;
use crate::html;
use crate::pdf::FontSet;

const DEFAULT_TYPST: &str = include_str!("../../../config/templates/report.typ");
const DEFAULT_HTML: &str = include_str!("../../../config/templates/report.html");

/// The PDF and HTML templates of reports.
///
/// `report.typ` reads the report's data with `json("data.json")` (see the default for every field); it is
/// compiled with the embedded fonts and those in the folder's `fonts/`, and may not read any other file. `report.html` is HTML with
/// `{{slot}}`s that are replaced by escaped text or by ready-made, escaped HTML fragments (tables, charts); the
/// known slots are `title`, `source`, `generated`, `format`, `rows`, `column_count`, `locale`, `columns`,
/// `numeric`, `text`, `dates`, `charts`, `preview` and `notes`.
#[derive(Clone, Debug)]
pub struct Templates {
    typst: String,
    html: String,
    fonts: Arc<FontSet>,
}

impl PartialEq for Templates {
    /// The same texts, and the same fonts (the embedded ones alone, or the very same set).
    fn eq(&self, other: &Self) -> bool {
        let same_fonts =
            Arc::ptr_eq(&self.fonts, &other.fonts) || (self.fonts.added() == 0 && other.fonts.added() == 0);
        self.typst == other.typst && self.html == other.html && same_fonts
    }
}

impl Eq for Templates {}

impl Templates {
    /// The default templates compiled into the crate (copies of `config/templates/report.{typ,html}`).
    pub fn embedded() -> Self {
        Self { typst: DEFAULT_TYPST.to_owned(), html: DEFAULT_HTML.to_owned(), fonts: FontSet::embedded() }
    }

    /// Loads `report.typ` and `report.html` from `dir`, each falling back to the embedded default when the file
    /// does not exist, and the fonts (`.ttf`, `.otf`, `.ttc`, `.otc`) in `dir/fonts/` when it exists, added to the
    /// embedded ones for the characters those lack (Chinese, Japanese, Korean, emoji...). `None` gives the
    /// embedded defaults. A missing or unreadable folder is an error, and so are a font file that holds no font
    /// and an HTML layout using an unknown slot.
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
        let mut templates = Self::from_strings(read("report.typ", DEFAULT_TYPST)?, read("report.html", DEFAULT_HTML)?)?;
        templates.fonts = load_fonts(&dir.join("fonts"))?;
        Ok(templates)
    }

    /// How many fonts the templates folder added to the embedded ones.
    pub fn added_fonts(&self) -> usize {
        self.fonts.added()
    }

    pub(crate) fn fonts(&self) -> &FontSet {
        &self.fonts
    }

    /// Templates from text; the HTML layout's slots are checked.
    pub fn from_strings(typst: String, html: String) -> Result<Self, ReportError> {
        html::slots_of(&html).map_err(|reason| ReportError::TemplateInvalid { name: "report.html", reason })?;
        Ok(Self { typst, html, fonts: FontSet::embedded() })
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

/// The embedded fonts plus the font files in `folder`, in name order; the embedded ones alone when it does not
/// exist.
fn load_fonts(folder: &Path) -> Result<Arc<FontSet>, ReportError> {
    let entries = match std::fs::read_dir(folder) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(FontSet::embedded()),
        Err(source) => return Err(ReportError::Template { path: folder.to_path_buf(), source }),
    };
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry.map_err(|source| ReportError::Template { path: folder.to_path_buf(), source })?.path();
        let extension = path.extension().and_then(|ext| ext.to_str()).map(str::to_ascii_lowercase);
        if matches!(extension.as_deref(), Some("ttf" | "otf" | "ttc" | "otc")) {
            paths.push(path);
        }
    }
    if paths.is_empty() {
        return Ok(FontSet::embedded());
    }
    paths.sort();
    let mut files = Vec::with_capacity(paths.len());
    for path in &paths {
        files.push(std::fs::read(path).map_err(|source| ReportError::Template { path: path.clone(), source })?);
    }
    FontSet::with_files(files).ok_or_else(|| ReportError::TemplateInvalid {
        name: "fonts",
        reason: format!("a file in {} holds no font it can read", folder.display()),
    })
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
