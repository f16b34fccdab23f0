//! Helpers: rendering from bytes, reading PDFs with poppler's `pdftotext`.

use std::path::PathBuf;
use std::process::Command;

use sluice_report::{Report, ReportError, ReportInput, ReportSettings, TabularKind, Templates, render_report};
use time::macros::datetime;

pub fn render_with(name: &str, data: &[u8], settings: &ReportSettings) -> Result<Report, ReportError> {
    render_as(name, None, data, settings)
}

/// Renders `data` uploaded as `name`, recorded as `kind` (from its content type or extension) when one is given.
pub fn render_as(
    name: &str,
    kind: Option<TabularKind>,
    data: &[u8],
    settings: &ReportSettings,
) -> Result<Report, ReportError> {
    let title = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
    let input = ReportInput { title, source_name: name, kind, generated_at: datetime!(2025-11-25 14:03 UTC), data };
    render_report(&input, settings, &Templates::embedded())
}

pub fn render(name: &str, data: &[u8]) -> Result<Report, ReportError> {
    render_with(name, data, &ReportSettings::default())
}

pub fn error(name: &str, data: &[u8]) -> ReportError {
    match render(name, data) {
        Ok(report) => panic!("expected an error, got a report of {:?}", report.summary),
        Err(error) => error,
    }
}

pub fn sample(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../samples").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Where tests leave their outputs for a person to look at.
pub fn out_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("reports");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn tool(name: &str) -> Command {
    let probe = Command::new(name).arg("-v").output();
    assert!(
        probe.is_ok(),
        "`{name}` is needed to read the PDFs these tests make: install poppler-utils (apt-get install poppler-utils)"
    );
    Command::new(name)
}

/// The PDF's text (`pdftotext -layout`) and page count (`pdfinfo`).
pub fn pdf_text_and_pages(pdf: &[u8], name: &str) -> (String, u32) {
    assert!(pdf.starts_with(b"%PDF-"), "not a PDF");
    let path = out_dir().join(format!("{name}.pdf"));
    std::fs::write(&path, pdf).unwrap();
    let text = tool("pdftotext").arg("-layout").arg(&path).arg("-").output().unwrap();
    assert!(text.status.success(), "pdftotext failed: {}", String::from_utf8_lossy(&text.stderr));
    let info = tool("pdfinfo").arg(&path).output().unwrap();
    assert!(info.status.success(), "pdfinfo failed: {}", String::from_utf8_lossy(&info.stderr));
    let info = String::from_utf8_lossy(&info.stdout).into_owned();
    let pages = info
        .lines()
        .find_map(|line| line.strip_prefix("Pages:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no page count in pdfinfo output: {info}"));
    (String::from_utf8_lossy(&text.stdout).into_owned(), pages)
}
