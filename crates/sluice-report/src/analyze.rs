//! The one pass over the rows: header checks, limits, the sample that decides the locale and the charted
//! columns, and the streaming accumulators.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use crate::error::ReportError;
use crate::number::{DateCell, LocaleHint, is_missing_marker, locale_hint, parse_date, parse_number};
use crate::settings::{Locale, ReportSettings};
use crate::stats::{DateAcc, GroupSums, NumAcc, TextAcc};

/// Rows (or bytes of cells) buffered before the locale and the charted columns are decided.
pub(crate) const SAMPLE_ROWS: usize = 1000;
const SAMPLE_BYTES: usize = 1 << 20;
/// Rows shown in the preview table.
pub(crate) const PREVIEW_ROWS: usize = 100;
/// Characters of a cell shown in the preview table.
const PREVIEW_CHARS: usize = 80;
/// Numeric columns that get charts.
pub(crate) const MAX_CHARTED: usize = 6;
/// Distinct categories kept for the bar charts; later ones are summed into "other".
const MAX_CATEGORIES: usize = 10_000;

/// One column's accumulators.
#[derive(Debug)]
pub(crate) struct Column {
    pub name: String,
    /// Cells holding a value.
    pub filled: u64,
    /// Empty cells.
    pub empty: u64,
    /// Cells holding a missing-value marker (`N/A`...): empty in a numeric or date column, values in a text one.
    pub missing: u64,
    pub numbers: Option<NumAcc>,
    pub dates: Option<DateAcc>,
    pub text: TextAcc,
}

/// Row count and charted sums of one month.
#[derive(Clone, Debug)]
pub(crate) struct MonthBucket {
    pub rows: u64,
    pub sums: Vec<Decimal>,
}

/// Months keyed by (year, month), under the day-first and month-first readings.
pub(crate) type Months = BTreeMap<(i32, u8), MonthBucket>;

/// What the pass found.
#[derive(Debug)]
pub(crate) struct Analysis {
    pub rows: u64,
    pub locale: Locale,
    pub columns: Vec<Column>,
    pub preview: Vec<Vec<String>>,
    pub category: Option<usize>,
    pub date_column: Option<usize>,
    pub charted: Vec<usize>,
    pub groups: GroupSums,
    pub months_day_first: Months,
    pub months_month_first: Months,
}

/// How the input lays out its rows, for the rules that differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    /// A JSON array of objects: a row has a cell for every column.
    Json,
    /// Text separated by this delimiter: a trailing delimiter may leave unnamed, empty last columns.
    Delimited(u8),
}

/// Receives rows one at a time; see the module documentation.
pub(crate) struct Analyzer {
    max_rows: u64,
    max_columns: usize,
    max_cell_bytes: usize,
    configured: Locale,
    layout: Layout,
    width: usize,
    /// How many of the last columns have no name in a delimited header (a trailing delimiter): rows may leave
    /// them out, and those empty on every line are dropped at the end.
    unnamed_tail: usize,
    header: Option<Vec<String>>,
    sample: Vec<Vec<String>>,
    sample_bytes: usize,
    rows: u64,
    running: Option<Analysis>,
    numbers: Vec<Option<Decimal>>,
}

impl Analyzer {
    /// `locale` is the configured one (`Auto` to detect).
    pub(crate) fn new(settings: &ReportSettings, locale: Locale, layout: Layout) -> Self {
        Self {
            max_rows: settings.max_rows,
            max_columns: settings.max_columns,
            max_cell_bytes: settings.max_cell_bytes,
            configured: locale,
            layout,
            width: 0,
            unnamed_tail: 0,
            header: None,
            sample: Vec::new(),
            sample_bytes: 0,
            rows: 0,
            running: None,
            numbers: Vec::new(),
        }
    }

    /// Takes the header (first call) or a data row, starting on `line`.
    pub(crate) fn push(&mut self, line: u64, fields: &[&str]) -> Result<(), ReportError> {
        if fields.iter().any(|cell| cell.len() > self.max_cell_bytes) {
            return Err(ReportError::CellTooLarge { line, limit: self.max_cell_bytes });
        }
        if self.header.is_none() && self.running.is_none() {
            return self.take_header(line, fields);
        }
        let mut fields = fields;
        if fields.len() != self.width {
            // Cells past the header's may be empty (a trailing delimiter); the header's unnamed last columns
            // (its own trailing delimiter) may be left out.
            let extra_is_empty = fields.iter().skip(self.width).all(|cell| cell.trim().is_empty());
            let required = self.width.saturating_sub(self.unnamed_tail).max(1);
            if fields.len() < required || !extra_is_empty {
                return Err(ReportError::RaggedRow { line, expected: self.width, found: fields.len() });
            }
            fields = fields.get(..self.width).unwrap_or(fields);
        }
        // Every record is a row, even when all its cells are empty: it counts towards the limit and its cells
        // towards the "Empty" counts. (Blank lines never get here: the CSV parser yields no record for them.)
        self.rows += 1;
        if self.rows > self.max_rows {
            return Err(ReportError::TooManyRows { limit: self.max_rows });
        }
        if self.running.is_some() {
            self.process(fields);
            return Ok(());
        }
        self.sample_bytes += fields.iter().map(|cell| cell.len()).sum::<usize>();
        self.sample.push(fields.iter().map(|cell| (*cell).to_owned()).collect());
        if self.sample.len() >= SAMPLE_ROWS || self.sample_bytes >= SAMPLE_BYTES {
            self.start();
        }
        Ok(())
    }

    fn take_header(&mut self, line: u64, fields: &[&str]) -> Result<(), ReportError> {
        if fields.len() > self.max_columns {
            return Err(ReportError::TooManyColumns { line, found: fields.len(), limit: self.max_columns });
        }
        let mut names: Vec<String> = Vec::with_capacity(fields.len());
        for field in fields {
            let name = unique_name(field, names.iter().map(String::as_str));
            names.push(name);
        }
        self.width = names.len();
        if let Layout::Delimited(_) = self.layout {
            self.unnamed_tail = fields.iter().rev().take_while(|field| field.trim().is_empty()).count();
        }
        self.header = Some(names);
        Ok(())
    }

    /// Adds a last column named `name` (made unique), empty in every row taken so far: a JSON key first seen after
    /// the header. Its statistics are kept like the others' (within the budget of a table of `max_columns`
    /// columns, so memory stays bounded); it is never charted, the charts being chosen from the first rows.
    pub(crate) fn add_column(&mut self, name: &str) {
        self.width += 1;
        if let Some(header) = &mut self.header {
            let name = unique_name(name, header.iter().map(String::as_str));
            header.push(name);
            return;
        }
        let Some(analysis) = &mut self.running else { return };
        let name = unique_name(name, analysis.columns.iter().map(|column| column.name.as_str()));
        let mut column = new_column(name, self.max_columns);
        column.empty = analysis.rows;
        analysis.columns.push(column);
        for row in &mut analysis.preview {
            row.push(String::new());
        }
    }

    /// Ends the pass.
    pub(crate) fn finish(mut self) -> Result<Analysis, ReportError> {
        if self.running.is_none() {
            if self.header.is_none() {
                return Err(ReportError::EmptyFile { detail: "" });
            }
            self.start();
        }
        match self.running {
            Some(mut analysis) if analysis.rows > 0 => {
                drop_empty_unnamed_tail(&mut analysis, self.unnamed_tail);
                Ok(analysis)
            }
            _ => Err(ReportError::EmptyFile { detail: ": it has a header but no data rows" }),
        }
    }

    /// Decides the locale and the charted columns from the sample, then feeds the sample through.
    fn start(&mut self) {
        let locale = self.decide_locale();
        let names = self.header.take().unwrap_or_default();
        let width = names.len();
        let columns = names.into_iter().map(|name| new_column(name, width)).collect::<Vec<_>>();
        let sample = std::mem::take(&mut self.sample);
        // Missing-value markers decide nothing, like empty cells.
        let has_value = |cell: &&str| !cell.is_empty() && !is_missing_marker(cell);
        let all = |index: usize, test: &dyn Fn(&str) -> bool| {
            let mut cells = sample.iter().filter_map(|row| row.get(index)).map(|c| c.trim()).filter(has_value);
            let mut any = false;
            let ok = cells.all(|cell| {
                any = true;
                test(cell)
            });
            any && ok
        };
        let is_number = |cell: &str| parse_number(cell, locale).is_some();
        let is_date = |cell: &str| parse_date(cell).is_some();
        let category = (0..columns.len()).find(|&i| {
            sample
                .iter()
                .filter_map(|row| row.get(i))
                .map(|c| c.trim())
                .any(|c| has_value(&c) && !is_number(c) && !is_date(c))
        });
        let date_column = (0..columns.len()).find(|&i| all(i, &is_date));
        let charted: Vec<usize> = (0..columns.len()).filter(|&i| all(i, &is_number)).take(MAX_CHARTED).collect();
        self.running = Some(Analysis {
            rows: self.rows,
            locale,
            groups: GroupSums::new(charted.len(), MAX_CATEGORIES),
            columns,
            preview: Vec::new(),
            category,
            date_column,
            charted,
            months_day_first: BTreeMap::new(),
            months_month_first: BTreeMap::new(),
        });
        for row in &sample {
            let cells: Vec<&str> = row.iter().map(String::as_str).collect();
            self.process(&cells);
        }
    }

    /// The configured locale, or the one the sample's numbers vote for; ties go to `Comma` for `;`-separated
    /// data and to `Dot` otherwise.
    fn decide_locale(&self) -> Locale {
        if self.configured != Locale::Auto {
            return self.configured;
        }
        let (mut dot, mut comma) = (0u64, 0u64);
        for cell in self.sample.iter().flatten() {
            match locale_hint(cell.trim()) {
                LocaleHint::Dot => dot += 1,
                LocaleHint::Comma => comma += 1,
                LocaleHint::Neither => {}
            }
        }
        match dot.cmp(&comma) {
            std::cmp::Ordering::Greater => Locale::Dot,
            std::cmp::Ordering::Less => Locale::Comma,
            std::cmp::Ordering::Equal if self.layout == Layout::Delimited(b';') => Locale::Comma,
            std::cmp::Ordering::Equal => Locale::Dot,
        }
    }

    fn process(&mut self, fields: &[&str]) {
        let Some(analysis) = &mut self.running else { return };
        analysis.rows = self.rows;
        if analysis.preview.len() < PREVIEW_ROWS {
            let cells = (0..analysis.columns.len()).map(|index| preview_cell(fields.get(index).unwrap_or(&"")));
            analysis.preview.push(cells.collect());
        }
        self.numbers.clear();
        self.numbers.resize(analysis.columns.len(), None);
        let mut date_cell = None;
        // A row shorter than the header (sampled before a JSON key first seen later) is empty in the rest.
        for (index, column) in analysis.columns.iter_mut().enumerate() {
            let cell = fields.get(index).map_or("", |cell| cell.trim());
            if cell.is_empty() {
                column.empty += 1;
                continue;
            }
            column.text.add(cell);
            if is_missing_marker(cell) {
                column.missing += 1;
                continue;
            }
            column.filled += 1;
            if let Some(acc) = &mut column.numbers {
                match parse_number(cell, analysis.locale) {
                    Some(number) if acc.add(number) => {
                        if let Some(slot) = self.numbers.get_mut(index) {
                            *slot = Some(number.value);
                        }
                    }
                    _ => column.numbers = None,
                }
            }
            if let Some(acc) = &mut column.dates {
                match parse_date(cell) {
                    Some(parsed) if acc.add(parsed) => {
                        if analysis.date_column == Some(index) {
                            date_cell = Some(parsed);
                        }
                    }
                    _ => column.dates = None,
                }
            }
        }
        let charted_values = analysis.charted.iter().map(|&column| self.numbers.get(column).copied().flatten());
        if let Some(category) = analysis.category {
            let key = fields.get(category).map(|c| c.trim()).filter(|c| !c.is_empty()).unwrap_or("(empty)");
            for (slot, value) in charted_values.clone().enumerate() {
                if let Some(value) = value {
                    analysis.groups.add(key, slot, value);
                }
            }
        }
        if let Some(cell) = date_cell {
            let (day_first, month_first) = match cell {
                DateCell::Iso(date) => (Some(date), Some(date)),
                DateCell::Slashed { day_first, month_first } => (day_first, month_first),
            };
            let width = analysis.charted.len();
            for (months, date) in
                [(&mut analysis.months_day_first, day_first), (&mut analysis.months_month_first, month_first)]
            {
                let Some(date) = date else { continue };
                let bucket = months
                    .entry((date.year(), u8::from(date.month())))
                    .or_insert_with(|| MonthBucket { rows: 0, sums: vec![Decimal::ZERO; width] });
                bucket.rows += 1;
                for (sum, value) in bucket.sums.iter_mut().zip(charted_values.clone()) {
                    *sum = sum.saturating_add(value.unwrap_or_default());
                }
            }
        }
    }
}

/// Drops the last of the `unnamed_tail` columns (those a trailing delimiter on the header made) while they are
/// empty on every line, keeping at least one column. None of them can be charted or group the charts, which need
/// cells that are not empty.
fn drop_empty_unnamed_tail(analysis: &mut Analysis, unnamed_tail: usize) {
    let first_unnamed = analysis.columns.len().saturating_sub(unnamed_tail).max(1);
    let mut keep = analysis.columns.len();
    let is_empty = |column: &Column| column.filled == 0 && column.missing == 0;
    while keep > first_unnamed && analysis.columns.get(keep - 1).is_some_and(is_empty) {
        keep -= 1;
    }
    analysis.columns.truncate(keep);
    for row in &mut analysis.preview {
        row.truncate(keep);
    }
}

/// A column named after the header's `field`: `Column N` when it is blank, with ` (2)`, ` (3)`... when `taken`
/// has the name already.
fn unique_name<'a>(field: &str, taken: impl Iterator<Item = &'a str> + Clone) -> String {
    let base = match field.trim() {
        "" => format!("Column {}", taken.clone().count() + 1),
        name => name.to_owned(),
    };
    let mut name = base.clone();
    let mut copy = 2;
    while taken.clone().any(|existing| existing == name) {
        name = format!("{base} ({copy})");
        copy += 1;
    }
    name
}

/// A column with empty accumulators, whose memory is bounded for a table of `width` columns: the exact median
/// and the value counts of all columns together stay within a fixed budget.
fn new_column(name: String, width: usize) -> Column {
    let width = width.max(1);
    let median_cap = (1_000_000 / width).max(4096);
    let text_bytes = ((16 << 20) / width).max(64 << 10);
    Column {
        name,
        filled: 0,
        empty: 0,
        missing: 0,
        numbers: Some(NumAcc::new(median_cap)),
        dates: Some(DateAcc::new()),
        text: TextAcc::new(10_000, text_bytes),
    }
}

fn preview_cell(cell: &str) -> String {
    let cell = cell.trim();
    match cell.char_indices().nth(PREVIEW_CHARS) {
        Some((cut, _)) => format!("{}…", cell.get(..cut).unwrap_or(cell)),
        None => cell.to_owned(),
    }
}

impl crate::json::TableSink for Analyzer {
    fn push(&mut self, position: u64, fields: &[&str]) -> Result<(), ReportError> {
        Analyzer::push(self, position, fields)
    }

    fn add_column(&mut self, name: &str) {
        Analyzer::add_column(self, name);
    }
}
