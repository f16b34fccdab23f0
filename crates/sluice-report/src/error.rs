//! The errors of report rendering, with stable codes.

use std::path::PathBuf;

/// Why a report could not be made. Every variant has a stable [`code`](ReportError::code); messages name the
/// line (1-based, as an editor shows it) or the configuration key involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// The file holds nothing but (optionally) a header.
    #[error("the file is empty{detail}")]
    EmptyFile {
        /// What was found, e.g. ": it has a header but no data rows".
        detail: &'static str,
    },
    /// More data rows than `reports.max_rows`.
    #[error("the file has more than {limit} data rows, the limit set by reports.max_rows")]
    TooManyRows {
        /// The configured limit.
        limit: u64,
    },
    /// A CSV or TSV line with more columns than `reports.max_columns`.
    #[error("line {line} has {found} columns, more than the limit of {limit} set by reports.max_columns")]
    TooManyColumns {
        /// The line the record starts on.
        line: u64,
        /// How many columns the record has (all of them are counted, none is kept).
        found: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A JSON object with more keys than `reports.max_columns` (each key is a column); code `too_many_columns`.
    #[error(
        "object {object} of the JSON array has {found} keys, more than the limit of {limit} columns set by \
         reports.max_columns"
    )]
    TooManyKeys {
        /// The object's position in the array (1-based).
        object: u64,
        /// How many keys it has (a repeated key counts each time; the keys past the limit are counted, not kept).
        found: usize,
        /// The configured limit.
        limit: usize,
    },
    /// JSON objects that, none of them over the limit alone, have more distinct keys between them than
    /// `reports.max_columns` (each distinct key is a column); code `too_many_columns`.
    #[error(
        "the first {objects} objects of the JSON array have {found} distinct keys between them (each distinct key \
         is a column), more than the limit of {limit} set by reports.max_columns"
    )]
    TooManyDistinctKeys {
        /// How many objects, from the first, were read when the limit was passed.
        objects: u64,
        /// How many distinct keys those objects have between them.
        found: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A cell larger than `reports.max_cell_bytes`.
    #[error("line {line} has a cell larger than {limit} bytes, the limit set by reports.max_cell_bytes")]
    CellTooLarge {
        /// The line the cell starts on.
        line: u64,
        /// The configured limit.
        limit: usize,
    },
    /// Bytes that are not UTF-8.
    #[error("line {line} is not valid UTF-8 text{hint}")]
    InvalidUtf8 {
        /// The line holding the bad bytes.
        line: u64,
        /// A hint on what to do.
        hint: &'static str,
    },
    /// A row with a different number of cells than the header.
    #[error("line {line} has {found} cells where the header has {expected}")]
    RaggedRow {
        /// The line the row starts on.
        line: u64,
        /// Cells in the header.
        expected: usize,
        /// Cells in this row.
        found: usize,
    },
    /// A quoted field that is never closed.
    #[error("the quoted field opened on line {line} is never closed (unbalanced `\"`)")]
    UnbalancedQuote {
        /// The line of the opening quote.
        line: u64,
    },
    /// JSON that does not parse.
    #[error("invalid JSON at line {line}, column {column}")]
    InvalidJson {
        /// Line of the error.
        line: u64,
        /// Column of the error.
        column: u64,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// Data that is not a table (JSON that is not an array of flat objects, say).
    #[error("not tabular data: {reason}")]
    NotTabular {
        /// What is wrong, for a person.
        reason: String,
    },
    /// The input could not be read.
    #[error("could not read the input")]
    Read(#[source] std::io::Error),
    /// A template file could not be read.
    #[error("could not read the template {}", path.display())]
    Template {
        /// The template file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A template is malformed (an unknown `{{slot}}` in the HTML layout, say).
    #[error("the template {name} is invalid: {reason}")]
    TemplateInvalid {
        /// The template's file name.
        name: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The typesetter failed (usually an error in `report.typ`).
    #[error("the PDF could not be typeset: {message}")]
    RenderFailed {
        /// The typesetter's diagnostics.
        message: String,
    },
}

impl ReportError {
    /// The stable, snake_case code of this error (as used in the job document).
    pub fn code(&self) -> &'static str {
        match self {
            Self::EmptyFile { .. } => "empty_file",
            Self::TooManyRows { .. } => "too_many_rows",
            Self::TooManyColumns { .. } | Self::TooManyKeys { .. } | Self::TooManyDistinctKeys { .. } => {
                "too_many_columns"
            }
            Self::CellTooLarge { .. } => "cell_too_large",
            Self::InvalidUtf8 { .. } => "invalid_utf8",
            Self::RaggedRow { .. } => "ragged_row",
            Self::UnbalancedQuote { .. } => "unbalanced_quote",
            Self::InvalidJson { .. } => "invalid_json",
            Self::NotTabular { .. } => "not_tabular",
            Self::Read(_) => "read_failed",
            Self::Template { .. } => "template_unreadable",
            Self::TemplateInvalid { .. } => "template_invalid",
            Self::RenderFailed { .. } => "render_failed",
        }
    }

    /// Whether retrying with the same bytes can never succeed: true for everything the file itself is to blame
    /// for; false for reading and template or typesetting failures, which an operator can fix.
    pub fn is_permanent(&self) -> bool {
        !matches!(
            self,
            Self::Read(_) | Self::Template { .. } | Self::TemplateInvalid { .. } | Self::RenderFailed { .. }
        )
    }

    /// The input line this error points at, when it points at one.
    pub fn line(&self) -> Option<u64> {
        match self {
            Self::TooManyColumns { line, .. }
            | Self::CellTooLarge { line, .. }
            | Self::InvalidUtf8 { line, .. }
            | Self::RaggedRow { line, .. }
            | Self::UnbalancedQuote { line }
            | Self::InvalidJson { line, .. } => Some(*line),
            _ => None,
        }
    }
}
