//! Pure, synchronous rendering of tabular data into reports: a PDF and a self-contained HTML page.
//!
//! This crate owns everything between the bytes of a CSV, TSV or JSON upload and the bytes of its two reports:
//! deciding whether an upload is tabular at all ([`looks_like_tabular`]), sniffing the delimiter, reading the
//! rows under limits ([`ReportSettings`]), inferring each column's type ([`ColumnKind`]), computing statistics in
//! one streaming pass with bounded memory, drawing SVG charts, and filling the two user-editable [`Templates`]
//! (the PDF is typeset in-process by typst with embedded fonts). [`render_report`] returns a [`Report`] or a
//! [`ReportError`] with a stable code; it never writes anything, so there is never a half-written output.
//!
//! It must not depend on tokio, object storage, HTTP or mail crates: the pipeline runs it on a blocking thread
//! and stores what it returns. It reads no environment, no system fonts and no network.
//!
//! # How data is read
//! - **Format**: the one recorded for the upload ([`ReportInput::kind`], from its declared type or extension), else
//!   the name's extension, else JSON when the data starts with `[` and CSV otherwise.
//! - **Delimiter**: the one an Excel `sep=;` first line names (that line is skipped), else `,` `;` tab or `|`,
//!   whichever splits the first records most consistently (tab first for a `.tsv` name). Quoted fields may hold
//!   delimiters, `""` and newlines. A UTF-8 byte-order mark is skipped; CRLF, LF and a lone CR end lines, and the
//!   line numbers in errors count them (and blank lines) as an editor does; a byte that is not UTF-8 is named by
//!   the line it is on.
//! - **Header**: the first record is always the header. Blank names become `Column N`, repeated ones get
//!   ` (2)`, ` (3)`...
//! - **Tolerated**: blank lines (nothing at all on them: skipped, not counted), a trailing delimiter (extra empty
//!   cells after the last column; on the header, an unnamed last column that rows may leave out, dropped when it is
//!   empty on every line), spaces around values. A record whose cells are all empty (`,,` in CSV, `{"a": null}` in
//!   JSON) is a row like any other: it is counted and its cells are empty.
//! - **Rejected**, with the line number: a spreadsheet workbook (`.xlsx`, `.ods`, `.xls`: `not_tabular`, named as
//!   such, to be exported as CSV), invalid UTF-8 (`invalid_utf8`), a row with fewer cells than the header (its
//!   unnamed last columns aside) or extra non-empty cells (`ragged_row`), a quote never closed
//!   (`unbalanced_quote`), a cell or a row beyond the limits (`cell_too_large`, `too_many_columns`), more rows than
//!   `max_rows` (`too_many_rows`), no data rows (`empty_file`). `too_many_columns` says how many columns the line
//!   has (counted, not kept). In JSON every distinct key is a column (one first seen after the first 1,000 objects
//!   too: it is empty in the rows before it, and not charted): the error names the object with too many keys, or
//!   how many objects, from the first, have too many distinct keys between them.
//! - **Numbers** (see `number.rs`): optional sign or parentheses, digits grouped by threes or not, a decimal part,
//!   or scientific notation (`5.2e-05`, `1,5E+3` with a decimal comma; always a decimal); no currency symbols;
//!   `007` is a code (text). The decimal separator is the configured [`Locale`] or, with `auto`, the one the first
//!   1,000 rows vote for (a cell votes when only one separator reads it: `9,80` and `1.097,60` for a comma, `14.50`
//!   and `1,234.56` for a point; `1.234` does not vote); without votes, `;`-separated data uses a decimal comma and
//!   anything else a point. JSON uses a point, and its numbers are read from their text exactly as written
//!   (`19.90`, `12345678901234567890123`), never through a float; one too large for a decimal is text.
//! - **Dates**: ISO `yyyy-mm-dd` (a time after it is ignored) and `dd/mm/yyyy` (also with `-` or `.`). A column is
//!   read month first (`mm/dd/yyyy`) only when some value cannot be day first (`12/31/2025`) and all can be month
//!   first; when every value reads both ways, it is read day first, and the report says so.
//! - **Types**: a column is `integer` or `decimal` when every non-empty cell is a number, `date` when every
//!   non-empty cell is a date, `text` otherwise. A missing-value marker (`NA`, `N/A`, `#N/A`, `NaN`, `null`, `-`,
//!   `—`, whole, in any case) counts as an empty cell in a numeric or date column and as a value in a text one.
//!
//! # Statistics and bounded memory
//! Sums, counts, minimums and maximums are exact (`rust_decimal`; `0.1 + 0.2` prints `0.30`) and shown with as many
//! decimals as the column's values have (at least two, at most 28); means and medians with those decimals, or three
//! significant digits when those would show a non-zero one as zero. Medians are exact while a column holds at most
//! 1,000,000 / columns (at least 4,096) distinct values, then estimated (P²) and marked `≈`. Distinct counts and
//! top values are exact up to 10,000 distinct values per column, then estimated (HyperLogLog) and marked. Bar
//! charts sum each numeric column (the first six) by the first text column (top eight categories and "Other"); line
//! charts sum them by month of the first date column (by year past ten years). The preview shows the first 100
//! rows. Nothing else grows with the number of rows.

mod analyze;
mod chart;
mod error;
mod guard;
mod html;
mod json;
mod model;
mod number;
mod pdf;
mod settings;
mod sniff;
mod stats;
mod templates;

use std::io::{Cursor, Read};

use serde::Serialize;
use time::OffsetDateTime;

pub use error::ReportError;
pub use settings::{DEFAULT_MAX_CELL_BYTES, DEFAULT_MAX_COLUMNS, DEFAULT_MAX_ROWS, Locale, ReportSettings};
pub use sniff::{TabularKind, looks_like_tabular};
pub use templates::Templates;

use analyze::{Analyzer, Layout};
use guard::{Guard, Violation, line_breaks};

/// Bytes read ahead to decide the kind and the delimiter.
const HEAD_BYTES: usize = 64 * 1024;

/// One input to report on, held in memory.
#[derive(Clone, Copy, Debug)]
pub struct ReportInput<'a> {
    /// The report's title (usually the file name without its extension).
    pub title: &'a str,
    /// The uploaded file's name, shown as the source (and used to tell `.json` and `.tsv` apart).
    pub source_name: &'a str,
    /// The format recorded for the upload (from its declared content type or its extension, as
    /// [`looks_like_tabular`] decided), which wins over the name and the bytes; `None` when nothing was recorded:
    /// then a `.json`, `.csv` or `.tsv` name decides, and without one a file starting with `[` is JSON.
    pub kind: Option<TabularKind>,
    /// When the report is made, shown in it.
    pub generated_at: OffsetDateTime,
    /// The file's bytes.
    pub data: &'a [u8],
}

/// The facts about an input other than its bytes, for [`render_report_from_reader`].
#[derive(Clone, Copy, Debug)]
pub struct ReportHeading<'a> {
    /// The report's title.
    pub title: &'a str,
    /// The uploaded file's name.
    pub source_name: &'a str,
    /// The format recorded for the upload, as [`ReportInput::kind`].
    pub kind: Option<TabularKind>,
    /// When the report is made.
    pub generated_at: OffsetDateTime,
}

/// The two renderings of a report and what was found in the data.
#[derive(Clone, Debug)]
pub struct Report {
    /// The PDF document.
    pub pdf: Vec<u8>,
    /// The self-contained HTML page (inline CSS and SVG, no scripts, no external references).
    pub html: String,
    /// Rows, columns and their types.
    pub summary: DatasetSummary,
}

/// What the data holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DatasetSummary {
    /// Data rows (header and blank lines excluded; rows whose cells are all empty included).
    pub rows: u64,
    /// The columns, in order.
    pub columns: Vec<ColumnSummary>,
    /// The decimal separator the numbers were read with.
    pub locale: Locale,
}

/// One column of the data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ColumnSummary {
    /// The header's name for it (made unique).
    pub name: String,
    /// Its inferred type.
    pub kind: ColumnKind,
    /// How many of its cells hold a value: not empty and, in a numeric or date column, not a missing-value
    /// marker such as `N/A`.
    pub filled: u64,
}

/// The inferred type of a column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    /// Whole numbers.
    Integer,
    /// Numbers with decimals.
    Decimal,
    /// Calendar dates.
    Date,
    /// Anything else.
    Text,
}

impl ColumnKind {
    /// The lowercase name shown in reports.
    pub fn label(self) -> &'static str {
        match self {
            Self::Integer => "integer",
            Self::Decimal => "decimal",
            Self::Date => "date",
            Self::Text => "text",
        }
    }
}

/// Renders the PDF and HTML reports of an in-memory input.
pub fn render_report(
    input: &ReportInput,
    settings: &ReportSettings,
    templates: &Templates,
) -> Result<Report, ReportError> {
    let heading = ReportHeading {
        title: input.title,
        source_name: input.source_name,
        kind: input.kind,
        generated_at: input.generated_at,
    };
    render_report_from_reader(&heading, input.data, settings, templates)
}

/// Renders the reports of an input read once, front to back: memory stays bounded whatever its size.
pub fn render_report_from_reader<R: Read>(
    heading: &ReportHeading,
    mut reader: R,
    settings: &ReportSettings,
    templates: &Templates,
) -> Result<Report, ReportError> {
    let mut head = Vec::with_capacity(HEAD_BYTES);
    (&mut reader).take(HEAD_BYTES as u64).read_to_end(&mut head).map_err(ReportError::Read)?;
    let complete = head.len() < HEAD_BYTES;
    if let Some(workbook) = sniff::workbook_kind(&head) {
        return Err(ReportError::NotTabular {
            reason: format!(
                "it is {workbook}, not text: open it in its spreadsheet program and export it as CSV (UTF-8)"
            ),
        });
    }
    if sniff::is_utf16(&head) {
        return Err(ReportError::InvalidUtf8 { line: 1, hint: ": it is UTF-16; save it as UTF-8" });
    }
    let body = sniff::strip_bom(&head);
    let bom = body.len() < head.len();
    if body.iter().all(u8::is_ascii_whitespace) && complete {
        return Err(ReportError::EmptyFile { detail: "" });
    }
    let name = heading.source_name.to_ascii_lowercase();
    let kind = heading.kind.or_else(|| sniff::kind_from_name(&name)).unwrap_or_else(|| {
        if body.trim_ascii_start().starts_with(b"[") { TabularKind::Json } else { TabularKind::Csv }
    });
    // Excel's `sep=;` line names the delimiter; the header is on the next line.
    let separator_line = if kind == TabularKind::Csv { sniff::separator_line(body) } else { None };
    let (body, first_line) = match separator_line {
        Some((_, length)) => (body.get(length..).unwrap_or_default(), 2),
        None => (body, 1),
    };
    let stream = Cursor::new(body).chain(reader);
    let (analysis, format) = if kind == TabularKind::Json {
        // JSON writes its numbers with a decimal point whatever the configured locale.
        let mut analyzer = Analyzer::new(settings, Locale::Dot, Layout::Json);
        json::read_json(stream, settings.max_columns, &mut analyzer)?;
        (analyzer.finish()?, "JSON array of objects".to_owned())
    } else {
        let delimiter = match separator_line {
            Some((named, _)) => named,
            None if name.ends_with(".tsv") && body.contains(&b'\t') => b'\t',
            None => sniff::sniff_delimiter(body, complete),
        };
        let analysis = read_csv(stream, delimiter, first_line, settings)?;
        let delimiter_name = match delimiter {
            b',' => "comma".to_owned(),
            b';' => "semicolon".to_owned(),
            b'\t' => "tab".to_owned(),
            b'|' => "pipe".to_owned(),
            other => format!("“{}”", char::from(other)),
        };
        let named_note = if separator_line.is_some() { " (named by its sep= line)" } else { "" };
        let bom_note = if bom { ", UTF-8 with BOM" } else { ", UTF-8" };
        (analysis, format!("{delimiter_name}-separated text{named_note}{bom_note}"))
    };
    let model_heading = model::Heading {
        title: heading.title,
        source: heading.source_name,
        generated_at: heading.generated_at,
        format: &format,
    };
    let model = model::build(&analysis, &model_heading);
    let summary = model::summary(&analysis);
    drop(analysis);
    let html = html::render(templates.html(), &model);
    let data = serde_json::to_vec(&model).map_err(|error| ReportError::RenderFailed { message: error.to_string() })?;
    let pdf = pdf::render(templates.typst(), templates.fonts(), data, heading.generated_at)?;
    Ok(Report { pdf, html, summary })
}

/// Reads delimited text whose first line (the header) is line `first_line` of the file.
fn read_csv<R: Read>(
    stream: R,
    delimiter: u8,
    first_line: u64,
    settings: &ReportSettings,
) -> Result<analyze::Analysis, ReportError> {
    let max_fields = settings.max_columns.saturating_mul(2).saturating_add(8);
    let guard = Guard::new(stream, delimiter, settings.max_cell_bytes, max_fields, first_line);
    let mut reader =
        csv::ReaderBuilder::new().delimiter(delimiter).has_headers(false).flexible(true).from_reader(guard);
    let mut analyzer = Analyzer::new(settings, settings.locale, Layout::Delimited(delimiter));
    let result = feed_csv(&mut reader, &mut analyzer, settings);
    match result {
        Ok(()) => match reader.get_ref().unclosed_quote() {
            Some(line) => Err(ReportError::UnbalancedQuote { line }),
            None => analyzer.finish(),
        },
        Err(error) => {
            let explained_by_quote = matches!(
                error,
                ReportError::RaggedRow { .. } | ReportError::CellTooLarge { .. } | ReportError::TooManyColumns { .. }
            );
            if explained_by_quote
                && reader.get_mut().drain().is_ok()
                && let Some(quote) = reader.get_ref().unclosed_quote()
                && error.line().is_none_or(|line| quote <= line)
            {
                return Err(ReportError::UnbalancedQuote { line: quote });
            }
            Err(error)
        }
    }
}

fn feed_csv<R: Read>(
    reader: &mut csv::Reader<Guard<R>>,
    analyzer: &mut Analyzer,
    settings: &ReportSettings,
) -> Result<(), ReportError> {
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(error) => return Err(csv_error(error, settings)),
        }
        let offset = record.position().map_or(0, csv::Position::byte);
        let line = reader.get_mut().record_line_at(offset);
        let mut fields: Vec<&str> = Vec::with_capacity(record.len());
        for field in record.iter() {
            match std::str::from_utf8(field) {
                Ok(text) => fields.push(text),
                Err(error) => {
                    // Line breaks are only inside quoted cells, which keep them as written.
                    let valid = field.get(..error.valid_up_to()).unwrap_or_default();
                    let breaks: u64 = fields.iter().map(|cell| line_breaks(cell.as_bytes())).sum();
                    let line = line + breaks + line_breaks(valid);
                    return Err(ReportError::InvalidUtf8 { line, hint: ": save the file as UTF-8" });
                }
            }
        }
        analyzer.push(line, &fields)?;
    }
}

fn csv_error(error: csv::Error, settings: &ReportSettings) -> ReportError {
    match error.into_kind() {
        csv::ErrorKind::Io(io) => {
            let violation = io.get_ref().and_then(|inner| inner.downcast_ref::<Violation>());
            match violation {
                Some(Violation::CellTooLarge { line }) => {
                    ReportError::CellTooLarge { line: *line, limit: settings.max_cell_bytes }
                }
                Some(Violation::TooManyFields { line, found }) => {
                    ReportError::TooManyColumns { line: *line, found: *found, limit: settings.max_columns }
                }
                None => ReportError::Read(io),
            }
        }
        other => ReportError::NotTabular { reason: format!("{other:?}") },
    }
}
