//! From the accumulators to what the templates show: every number formatted for the locale, every chart
//! drawn. The same [`Model`] is serialized to JSON for the typesetter and turned into HTML fragments.

use rust_decimal::Decimal;
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use serde::Serialize;
use time::{OffsetDateTime, UtcOffset};

use crate::analyze::{Analysis, Column, Months, PREVIEW_ROWS};
use crate::chart::{self, Datum};
use crate::number::{format_count, format_date, format_decimal, format_statistic};
use crate::settings::Locale;
use crate::stats::{DateOrder, Median};
use crate::{ColumnKind, ColumnSummary, DatasetSummary};

/// Bars shown per chart before the rest are summed into "Other".
const TOP_CATEGORIES: usize = 8;
/// Most frequent values listed per text column.
const TOP_VALUES: usize = 10;
/// Months shown one by one; longer spans are charted by year.
const MAX_MONTHS: usize = 120;

/// Everything a template shows.
#[derive(Debug, Serialize)]
pub(crate) struct Model {
    pub title: String,
    pub source: String,
    pub generated: String,
    pub format: String,
    pub rows: String,
    pub column_count: String,
    pub locale: &'static str,
    pub columns: Vec<ColumnView>,
    pub numeric: Vec<NumericView>,
    pub text: Vec<TextView>,
    pub dates: Vec<DateView>,
    pub bar_charts: Vec<ChartView>,
    pub line_charts: Vec<ChartView>,
    pub preview: PreviewView,
    pub notes: Vec<String>,
}

/// One line of the column overview.
#[derive(Debug, Serialize)]
pub(crate) struct ColumnView {
    pub name: String,
    pub kind: &'static str,
    pub filled: String,
    pub empty: String,
}

/// Statistics of a numeric column.
#[derive(Debug, Serialize)]
pub(crate) struct NumericView {
    pub name: String,
    pub count: String,
    pub sum: String,
    pub min: String,
    pub max: String,
    pub mean: String,
    pub median: String,
    pub median_approximate: bool,
}

/// Frequencies of a text column.
#[derive(Debug, Serialize)]
pub(crate) struct TextView {
    pub name: String,
    pub distinct: String,
    pub approximate: bool,
    pub top: Vec<TopValue>,
}

/// A frequent value, its count and share of the filled cells.
#[derive(Debug, Serialize)]
pub(crate) struct TopValue {
    pub value: String,
    pub count: String,
    pub share: String,
}

/// The range of a date column.
#[derive(Debug, Serialize)]
pub(crate) struct DateView {
    pub name: String,
    pub count: String,
    pub first: String,
    pub last: String,
    pub order: &'static str,
}

/// A chart: its title and SVG text.
#[derive(Debug, Serialize)]
pub(crate) struct ChartView {
    pub title: String,
    pub svg: String,
}

/// The first rows.
#[derive(Debug, Serialize)]
pub(crate) struct PreviewView {
    pub headers: Vec<String>,
    pub numeric: Vec<bool>,
    pub rows: Vec<Vec<String>>,
    pub caption: String,
}

/// Characters of a column name or a value shown in the report (the summary keeps names whole).
const SHOWN_CHARS: usize = 120;

/// `text` cut to [`SHOWN_CHARS`] characters, with an ellipsis when cut.
fn shown(text: &str) -> String {
    match text.char_indices().nth(SHOWN_CHARS) {
        Some((cut, _)) => format!("{}…", text.get(..cut).unwrap_or(text)),
        None => text.to_owned(),
    }
}

fn kind_of(column: &Column) -> ColumnKind {
    match (&column.numbers, &column.dates) {
        (Some(numbers), _) if numbers.count > 0 && numbers.all_integer => ColumnKind::Integer,
        (Some(numbers), _) if numbers.count > 0 => ColumnKind::Decimal,
        (_, Some(dates)) if dates.count > 0 && dates.reading().is_some() => ColumnKind::Date,
        _ => ColumnKind::Text,
    }
}

/// How many cells of the column hold a value and how many are empty: missing-value markers (`N/A`...) are empty
/// in a numeric or date column and values in a text one.
fn filled_and_empty(column: &Column) -> (u64, u64) {
    match kind_of(column) {
        ColumnKind::Text => (column.filled + column.missing, column.empty),
        ColumnKind::Integer | ColumnKind::Decimal | ColumnKind::Date => (column.filled, column.empty + column.missing),
    }
}

/// The display scale of a numeric column: none for integers; otherwise as many decimals as its values have (at
/// least two, at most the 28 a decimal holds), so that no value, sum, minimum or maximum that is not zero shows as
/// zero.
fn scale_of(column: &Column) -> u32 {
    match &column.numbers {
        Some(numbers) if !numbers.all_integer => numbers.max_scale.clamp(2, Decimal::MAX_SCALE),
        _ => 0,
    }
}

/// The public summary of the dataset.
pub(crate) fn summary(analysis: &Analysis) -> DatasetSummary {
    DatasetSummary {
        rows: analysis.rows,
        columns: analysis
            .columns
            .iter()
            .map(|column| ColumnSummary {
                name: column.name.clone(),
                kind: kind_of(column),
                filled: filled_and_empty(column).0,
            })
            .collect(),
        locale: analysis.locale,
    }
}

/// Header facts of the report.
pub(crate) struct Heading<'a> {
    pub title: &'a str,
    pub source: &'a str,
    pub generated_at: OffsetDateTime,
    pub format: &'a str,
}

/// Builds the model.
pub(crate) fn build(analysis: &Analysis, heading: &Heading) -> Model {
    let locale = analysis.locale;
    let mut notes = Vec::new();
    let columns = analysis
        .columns
        .iter()
        .map(|column| {
            let (filled, empty) = filled_and_empty(column);
            ColumnView {
                name: shown(&column.name),
                kind: kind_of(column).label(),
                filled: format_count(filled, locale),
                empty: format_count(empty, locale),
            }
        })
        .collect();
    let numeric = numeric_views(analysis, &mut notes);
    let text = text_views(analysis, &mut notes);
    let dates = date_views(analysis, &mut notes);
    let bar_charts = bar_charts(analysis, &mut notes);
    let line_charts = line_charts(analysis);
    let shown_rows = analysis.preview.len();
    let caption = if (shown_rows as u64) < analysis.rows {
        format!("The first {PREVIEW_ROWS} of {} rows.", format_count(analysis.rows, locale))
    } else {
        format!("All {} rows.", format_count(analysis.rows, locale))
    };
    let preview = PreviewView {
        headers: analysis.columns.iter().map(|c| shown(&c.name)).collect(),
        numeric: analysis
            .columns
            .iter()
            .map(|c| matches!(kind_of(c), ColumnKind::Integer | ColumnKind::Decimal))
            .collect(),
        rows: analysis.preview.clone(),
        caption,
    };
    let generated = heading.generated_at.to_offset(UtcOffset::UTC);
    Model {
        title: heading.title.to_owned(),
        source: heading.source.to_owned(),
        generated: format!(
            "{} {:02}:{:02} UTC",
            format_date(generated.date(), Locale::Dot),
            generated.hour(),
            generated.minute()
        ),
        format: heading.format.to_owned(),
        rows: format_count(analysis.rows, locale),
        column_count: format_count(analysis.columns.len() as u64, locale),
        locale: if locale == Locale::Comma { "decimal comma (1.234,56)" } else { "decimal point (1,234.56)" },
        columns,
        numeric,
        text,
        dates,
        bar_charts,
        line_charts,
        preview,
        notes,
    }
}

fn numeric_views(analysis: &Analysis, notes: &mut Vec<String>) -> Vec<NumericView> {
    let locale = analysis.locale;
    let mut views = Vec::new();
    for column in &analysis.columns {
        let Some(numbers) = column.numbers.as_ref().filter(|n| n.count > 0) else { continue };
        let scale = scale_of(column);
        let stat_scale = scale.max(2);
        let format = |value: Decimal| format_decimal(value, scale, locale);
        let format_stat = |value: Decimal| format_statistic(value, stat_scale, locale);
        let (median, median_approximate) = match numbers.median() {
            Some(Median::Exact(value)) => (format_stat(value), false),
            Some(Median::Approximate(estimate)) => {
                let text = Decimal::from_f64(estimate).map(format_stat).unwrap_or_default();
                (format!("≈ {text}"), true)
            }
            None => (String::new(), false),
        };
        if median_approximate {
            notes.push(format!(
                "The median of “{}” is estimated (P² algorithm): the column has too many distinct values to keep.",
                column.name
            ));
        }
        views.push(NumericView {
            name: shown(&column.name),
            count: format_count(numbers.count, locale),
            sum: format(numbers.sum),
            min: format(numbers.min),
            max: format(numbers.max),
            mean: numbers.mean().map(format_stat).unwrap_or_default(),
            median,
            median_approximate,
        });
    }
    views
}

fn text_views(analysis: &Analysis, notes: &mut Vec<String>) -> Vec<TextView> {
    let locale = analysis.locale;
    let mut views = Vec::new();
    for column in analysis.columns.iter().filter(|c| kind_of(c) == ColumnKind::Text) {
        let (filled, _) = filled_and_empty(column);
        if filled == 0 {
            continue;
        }
        let (distinct, approximate) = column.text.distinct();
        if approximate {
            notes.push(format!(
                "“{}” has too many distinct values to count them all: its distinct count is estimated \
                 (HyperLogLog, about ±2%) and its most frequent values are counted from the values seen first.",
                column.name
            ));
        }
        let top = column
            .text
            .top(TOP_VALUES)
            .into_iter()
            .map(|(value, count)| TopValue {
                value: shown(value),
                count: format_count(count, locale),
                share: match locale {
                    Locale::Comma => format!("{} %", format_decimal(share(count, filled), 1, locale)),
                    Locale::Auto | Locale::Dot => {
                        format!("{}%", format_decimal(share(count, filled), 1, locale))
                    }
                },
            })
            .collect();
        let distinct = format_count(distinct, locale);
        views.push(TextView {
            name: shown(&column.name),
            distinct: if approximate { format!("≈ {distinct}") } else { distinct },
            approximate,
            top,
        });
    }
    views
}

fn share(count: u64, of: u64) -> Decimal {
    if of == 0 {
        return Decimal::ZERO;
    }
    (Decimal::from(count) * Decimal::ONE_HUNDRED).checked_div(Decimal::from(of)).unwrap_or_default()
}

fn date_views(analysis: &Analysis, notes: &mut Vec<String>) -> Vec<DateView> {
    let locale = analysis.locale;
    let mut views = Vec::new();
    for column in analysis.columns.iter().filter(|c| kind_of(c) == ColumnKind::Date) {
        let Some((reading, order)) = column.dates.as_ref().and_then(|d| d.reading()) else { continue };
        let both = column.dates.as_ref().is_some_and(|d| d.day_first.valid && d.month_first.valid);
        if order == DateOrder::DayFirst && both {
            notes.push(format!(
                "Every date in “{}” reads either way (day/month or month/day); it was read day first.",
                column.name
            ));
        }
        views.push(DateView {
            name: shown(&column.name),
            count: format_count(column.filled, locale),
            first: reading.min.map(|d| format_date(d, locale)).unwrap_or_default(),
            last: reading.max.map(|d| format_date(d, locale)).unwrap_or_default(),
            order: match order {
                DateOrder::Iso => "yyyy-mm-dd",
                DateOrder::DayFirst => "dd/mm/yyyy",
                DateOrder::MonthFirst => "mm/dd/yyyy",
            },
        });
    }
    views
}

/// The charted columns that stayed numeric to the end, with their slot in the sums.
fn charted(analysis: &Analysis) -> Vec<(usize, &Column)> {
    analysis
        .charted
        .iter()
        .enumerate()
        .filter_map(|(slot, &index)| analysis.columns.get(index).map(|column| (slot, column)))
        .filter(|(_, column)| matches!(kind_of(column), ColumnKind::Integer | ColumnKind::Decimal))
        .collect()
}

fn bar_charts(analysis: &Analysis, notes: &mut Vec<String>) -> Vec<ChartView> {
    let locale = analysis.locale;
    let Some(category) = analysis.category.and_then(|i| analysis.columns.get(i)) else {
        if !analysis.charted.is_empty() {
            notes.push("No text column to group the numbers by, so there are no bar charts.".to_owned());
        }
        return Vec::new();
    };
    if analysis.groups.overflowed {
        notes.push(format!(
            "“{}” has more categories than the charts keep; the rest are summed into “Other”.",
            category.name
        ));
    }
    let mut charts = Vec::new();
    for (slot, column) in charted(analysis) {
        let scale = scale_of(column);
        let mut sums: Vec<(&str, Decimal)> = analysis
            .groups
            .groups
            .iter()
            .map(|(key, sums)| (&**key, sums.get(slot).copied().unwrap_or_default()))
            .collect();
        sums.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        let mut other = analysis.groups.other.get(slot).copied().unwrap_or_default();
        let mut has_other = analysis.groups.overflowed;
        if sums.len() > TOP_CATEGORIES + 1 {
            for (_, value) in sums.drain(TOP_CATEGORIES..) {
                other = other.saturating_add(value);
            }
            has_other = true;
        }
        let mut data: Vec<Datum> =
            sums.iter().map(|(label, value)| datum(label, *value, scale, locale, false)).collect();
        if has_other {
            data.push(datum("Other", other, scale, locale, true));
        }
        let title = format!("{} by {}", shown(&column.name), shown(&category.name));
        charts.push(ChartView { svg: chart::bar_chart(&title, &data), title });
    }
    charts
}

fn datum(label: &str, value: Decimal, scale: u32, locale: Locale, muted: bool) -> Datum {
    Datum {
        label: label.to_owned(),
        value: value.to_f64().unwrap_or_default(),
        display: format_decimal(value, scale, locale),
        muted,
    }
}

fn line_charts(analysis: &Analysis) -> Vec<ChartView> {
    let locale = analysis.locale;
    let Some(column) = analysis.date_column.and_then(|i| analysis.columns.get(i)) else { return Vec::new() };
    let Some((_, order)) = column.dates.as_ref().and_then(|d| d.reading()) else { return Vec::new() };
    let months = if order == DateOrder::MonthFirst { &analysis.months_month_first } else { &analysis.months_day_first };
    let (periods, by_year) = periods(months);
    if periods.is_empty() {
        return Vec::new();
    }
    let series = |pick: &dyn Fn(&Bucket) -> Decimal, scale: u32| -> Vec<Datum> {
        periods.iter().map(|bucket| datum(&bucket.label(by_year, locale), pick(bucket), scale, locale, false)).collect()
    };
    let unit = if by_year { "year" } else { "month" };
    let charted = charted(analysis);
    if charted.is_empty() {
        let title = format!("Rows per {unit} ({})", shown(&column.name));
        let data = series(&|bucket: &Bucket| Decimal::from(bucket.rows), 0);
        return vec![ChartView { svg: chart::line_chart(&title, &data, locale), title }];
    }
    charted
        .into_iter()
        .map(|(slot, numeric)| {
            let title = format!("{} per {unit} ({})", shown(&numeric.name), shown(&column.name));
            let data = series(&|bucket: &Bucket| bucket.sums.get(slot).copied().unwrap_or_default(), scale_of(numeric));
            ChartView { svg: chart::line_chart(&title, &data, locale), title }
        })
        .collect()
}

/// A month or year with its totals.
struct Bucket {
    year: i32,
    month: u8,
    rows: u64,
    sums: Vec<Decimal>,
}

impl Bucket {
    fn label(&self, by_year: bool, locale: Locale) -> String {
        match (by_year, locale) {
            (true, _) => self.year.to_string(),
            (false, Locale::Comma) => format!("{:02}/{}", self.month, self.year),
            (false, _) => format!("{}-{:02}", self.year, self.month),
        }
    }
}

/// Every month from the first to the last (empty months as zeros), or every year when that is too many.
fn periods(months: &Months) -> (Vec<Bucket>, bool) {
    let (Some((&first, _)), Some((&last, _))) = (months.first_key_value(), months.last_key_value()) else {
        return (Vec::new(), false);
    };
    let width = months.values().next().map_or(0, |b| b.sums.len());
    let span = (i64::from(last.0) - i64::from(first.0)) * 12 + i64::from(last.1) - i64::from(first.1) + 1;
    let by_year = span > MAX_MONTHS as i64;
    let mut buckets: Vec<Bucket> = Vec::new();
    let (mut year, mut month) = first;
    loop {
        let key = if by_year { (year, 1) } else { (year, month) };
        if buckets.last().is_none_or(|b| (b.year, b.month) != key) {
            buckets.push(Bucket { year: key.0, month: key.1, rows: 0, sums: vec![Decimal::ZERO; width] });
        }
        if let (Some(bucket), Some(found)) = (buckets.last_mut(), months.get(&(year, month))) {
            bucket.rows += found.rows;
            for (sum, add) in bucket.sums.iter_mut().zip(&found.sums) {
                *sum = sum.saturating_add(*add);
            }
        }
        if (year, month) >= last {
            break;
        }
        (year, month) = if month >= 12 { (year + 1, 1) } else { (year, month + 1) };
    }
    (buckets, by_year)
}
