//! Parsing numbers and dates as people write them in spreadsheets, and formatting numbers back.
//!
//! Numbers: an optional sign (`-`, `+`, `−`) or accounting parentheses `(12.50)`, digits optionally grouped in
//! threes by the locale's group separator (`,` for [`Locale::Dot`], `.` for [`Locale::Comma`]) or by a space,
//! and an optional decimal part after the locale's decimal separator. Or scientific notation: ungrouped digits
//! with an optional decimal part, `e` or `E`, an optionally signed exponent of one to three digits (`5.2e-05`,
//! `-3.1E+2`, `1,5e3` with a decimal comma); such a number is always a decimal. No currency symbols. A
//! multi-digit integer part starting with `0` (`007`, `01310`) is a code, not a number.
//!
//! Dates: ISO `yyyy-mm-dd` (also `yyyy/mm/dd`, with an optional time after `T` or a space, which is ignored) and
//! `a/b/yyyy` (also with `-` or `.`), whose day/month order the caller decides per column.

use rust_decimal::{Decimal, RoundingStrategy};
use time::{Date, Month};

use crate::settings::Locale;

/// A parsed number: its value and whether it was written without a decimal part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Number {
    pub value: Decimal,
    pub integer: bool,
}

fn is_group_space(c: char) -> bool {
    matches!(c, ' ' | '\u{a0}' | '\u{202f}')
}

/// Parses `text` (already trimmed) as a number written in `locale` (`Auto` counts as `Dot`).
pub(crate) fn parse_number(text: &str, locale: Locale) -> Option<Number> {
    let (negative, body) = split_sign(text)?;
    let decimal = locale.decimal_separator();
    if let Some((mantissa, exponent)) = body.split_once(['e', 'E']) {
        return parse_scientific(negative, mantissa, exponent, decimal);
    }
    let group = locale.group_separator();
    let (int_part, frac_part) = match body.split_once(decimal) {
        Some((int_part, frac_part)) => (int_part, Some(frac_part)),
        None => (body, None),
    };
    let mut digits = String::with_capacity(body.len() + 2);
    if negative {
        digits.push('-');
    }
    if int_part.is_empty() {
        frac_part?;
        digits.push('0');
    } else if !push_grouped(int_part, group, &mut digits) {
        return None;
    }
    if let Some(frac) = frac_part {
        if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.push('.');
        digits.push_str(frac);
    }
    let value = Decimal::from_str_exact(&digits).ok()?;
    Some(Number { value, integer: frac_part.is_none() })
}

/// Digits of an exponent at most: past `e999` no value fits a decimal anyway.
const MAX_EXPONENT_DIGITS: usize = 3;
/// The most decimals a [`Decimal`] holds.
const MAX_SCALE: i64 = 28;

/// Reads `mantissa` `e` `exponent` (the sign already stripped): `None` unless both are well formed and the value
/// fits a [`Decimal`] exactly.
fn parse_scientific(negative: bool, mantissa: &str, exponent: &str, decimal: char) -> Option<Number> {
    let all_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    let (int_part, frac_part) = match mantissa.split_once(decimal) {
        Some((_, "")) => return None,
        Some(parts) => parts,
        None => (mantissa, ""),
    };
    if (int_part.is_empty() && frac_part.is_empty()) || !all_digits(int_part) || !all_digits(frac_part) {
        return None;
    }
    if int_part.len() > 1 && int_part.starts_with('0') {
        return None;
    }
    let (exponent_negative, magnitude) = match exponent.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, exponent.strip_prefix('+').unwrap_or(exponent)),
    };
    if magnitude.is_empty() || magnitude.len() > MAX_EXPONENT_DIGITS || !all_digits(magnitude) {
        return None;
    }
    let magnitude: i64 = magnitude.parse().ok()?;
    let exponent = if exponent_negative { -magnitude } else { magnitude };
    let mut coefficient: i128 = format!("{int_part}{frac_part}").parse().ok()?;
    let mut scale = i64::try_from(frac_part.len()).ok()? - exponent;
    // Trailing zeros a decimal has no room for are dropped; a zero needs none.
    while scale > MAX_SCALE && coefficient % 10 == 0 {
        if coefficient == 0 {
            scale = 0;
            break;
        }
        coefficient /= 10;
        scale -= 1;
    }
    let mut value = Decimal::try_from_i128_with_scale(coefficient, u32::try_from(scale.max(0)).ok()?).ok()?;
    for _ in scale..0 {
        value = value.checked_mul(Decimal::TEN)?;
    }
    if negative {
        value.set_sign_negative(true);
    }
    Some(Number { value, integer: false })
}

/// Strips a sign or accounting parentheses; returns whether the number is negative.
fn split_sign(text: &str) -> Option<(bool, &str)> {
    if let Some(inner) = text.strip_prefix('(').and_then(|t| t.strip_suffix(')')) {
        return Some((true, inner.trim()));
    }
    if let Some(rest) = text.strip_prefix('-').or_else(|| text.strip_prefix('\u{2212}')) {
        return Some((true, rest));
    }
    Some((false, text.strip_prefix('+').unwrap_or(text)))
}

/// Appends the digits of an integer part, checking any grouping; false when it is not a valid integer part.
fn push_grouped(int_part: &str, group: char, out: &mut String) -> bool {
    let separator = int_part.chars().find(|&c| c == group || is_group_space(c));
    let groups: Vec<&str> = match separator {
        Some(sep) => int_part.split(sep).collect(),
        None => vec![int_part],
    };
    for (index, part) in groups.iter().enumerate() {
        let ok_len = if groups.len() == 1 {
            !part.is_empty()
        } else if index == 0 {
            (1..=3).contains(&part.len())
        } else {
            part.len() == 3
        };
        if !ok_len || !part.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    let first = groups.first().copied().unwrap_or_default();
    if first.len() > 1 && first.starts_with('0') {
        return false;
    }
    groups.iter().for_each(|part| out.push_str(part));
    true
}

/// Cells that mean "no value" (matched whole, in any case, after trimming): `NA`, `N/A`, `#N/A` (Excel), `NaN`
/// (a float that is not a number), `null`, and a lone `-` or `—`.
const MISSING_MARKERS: &[&str] = &["na", "n/a", "#n/a", "nan", "null", "-", "—"];

/// Whether `text` (trimmed) is a missing-value marker: in a column of numbers or dates it counts as an empty
/// cell (so one `N/A` does not turn a numeric column into text); in a text column it is a value like any other
/// (`NA` may be North America, `Nan` a name).
pub(crate) fn is_missing_marker(text: &str) -> bool {
    MISSING_MARKERS.iter().any(|marker| text.eq_ignore_ascii_case(marker))
}

/// What one cell says about the data's locale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LocaleHint {
    /// Only a decimal point reads this cell as a number (`14.50`, `1,234.5`, `1,234,567`).
    Dot,
    /// Only a decimal comma reads this cell as a number (`9,80`, `1.097,60`, `1.234.567`).
    Comma,
    /// Not a number, or a number either way (`12`, `1.234`).
    Neither,
}

/// Classifies a cell for locale detection: a hint only when exactly one locale parses it.
pub(crate) fn locale_hint(text: &str) -> LocaleHint {
    match (parse_number(text, Locale::Dot), parse_number(text, Locale::Comma)) {
        (Some(_), None) => LocaleHint::Dot,
        (None, Some(_)) => LocaleHint::Comma,
        (Some(dot), Some(comma)) if dot != comma => LocaleHint::Neither,
        _ => LocaleHint::Neither,
    }
}

/// A cell that reads as a date; slashed forms keep both readings for the column to decide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DateCell {
    /// `yyyy-mm-dd`: one reading.
    Iso(Date),
    /// `a/b/yyyy`: day-first and month-first readings, each if valid.
    Slashed { day_first: Option<Date>, month_first: Option<Date> },
}

/// Parses `text` (trimmed) as a date.
pub(crate) fn parse_date(text: &str) -> Option<DateCell> {
    let date_part = text.split(['T', ' ']).next().unwrap_or(text);
    let bytes = date_part.as_bytes();
    if bytes.len() == 10 && bytes.get(4).is_some_and(|&b| b == b'-' || b == b'/') && bytes.get(7) == bytes.get(4) {
        let year = number_of(date_part.get(0..4)?)?;
        let month = number_of(date_part.get(5..7)?)?;
        let day = number_of(date_part.get(8..10)?)?;
        return make_date(year, month, day).map(DateCell::Iso);
    }
    let separator = date_part.chars().find(|c| matches!(c, '/' | '-' | '.'))?;
    let mut parts = date_part.split(separator);
    let (a, b, y) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !(1..=2).contains(&a.len()) || !(1..=2).contains(&b.len()) || y.len() != 4 {
        return None;
    }
    let (a, b, year) = (number_of(a)?, number_of(b)?, number_of(y)?);
    let day_first = make_date(year, b, a);
    let month_first = make_date(year, a, b);
    (day_first.is_some() || month_first.is_some()).then_some(DateCell::Slashed { day_first, month_first })
}

fn number_of(digits: &str) -> Option<u32> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn make_date(year: u32, month: u32, day: u32) -> Option<Date> {
    let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
    Date::from_calendar_date(i32::try_from(year).ok()?, month, u8::try_from(day).ok()?).ok()
}

/// Formats `value` rounded (half away from zero) to `scale` decimals, grouping thousands for `locale`.
pub(crate) fn format_decimal(value: Decimal, scale: u32, locale: Locale) -> String {
    let rounded = value.round_dp_with_strategy(scale, RoundingStrategy::MidpointAwayFromZero);
    let plain = format!("{:.*}", scale as usize, rounded.abs());
    let (int_part, frac_part) = plain.split_once('.').unwrap_or((plain.as_str(), ""));
    let mut out = String::with_capacity(plain.len() + plain.len() / 3 + 2);
    if rounded.is_sign_negative() && !rounded.is_zero() {
        out.push('-');
    }
    let len = int_part.len();
    for (index, digit) in int_part.chars().enumerate() {
        if index > 0 && (len - index) % 3 == 0 {
            out.push(locale.group_separator());
        }
        out.push(digit);
    }
    if !frac_part.is_empty() {
        out.push(locale.decimal_separator());
        out.push_str(frac_part);
    }
    out
}

/// Formats a count with thousands separators.
pub(crate) fn format_count(count: u64, locale: Locale) -> String {
    format_decimal(Decimal::from(count), 0, locale)
}

/// Formats a date for display: ISO for `Dot`, `dd/mm/yyyy` for `Comma`.
pub(crate) fn format_date(date: Date, locale: Locale) -> String {
    match locale {
        Locale::Comma => format!("{:02}/{:02}/{:04}", date.day(), u8::from(date.month()), date.year()),
        Locale::Auto | Locale::Dot => format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day()),
    }
}

/// Significant digits a statistic keeps when the column's own decimals would show it as zero.
const STATISTIC_SIGNIFICANT_DIGITS: u32 = 3;

/// Formats a statistic computed from the values (a mean, a median) with `scale` decimals, or with more when
/// those would round a value that is not zero to zero: then with [`STATISTIC_SIGNIFICANT_DIGITS`] significant
/// digits (`0.00333`), so that a non-zero statistic never reads as zero.
pub(crate) fn format_statistic(value: Decimal, scale: u32, locale: Locale) -> String {
    format_decimal(value, statistic_scale(value, scale), locale)
}

/// The decimals [`format_statistic`] shows `value` with.
fn statistic_scale(value: Decimal, scale: u32) -> u32 {
    if value.is_zero() || !value.round_dp_with_strategy(scale, RoundingStrategy::MidpointAwayFromZero).is_zero() {
        return scale;
    }
    // |value| = mantissa × 10^-value.scale(), below 1 here: its first significant digit is the decimal at
    // value.scale() − (digits of the mantissa) + 1.
    let digits = value.mantissa().unsigned_abs().checked_ilog10().map_or(1, |log| log + 1);
    let first_significant = value.scale().saturating_sub(digits) + 1;
    (first_significant + STATISTIC_SIGNIFICANT_DIGITS - 1).min(Decimal::MAX_SCALE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(text: &str) -> Decimal {
        Decimal::from_str_exact(text).unwrap()
    }

    fn num(text: &str, locale: Locale) -> Option<(Decimal, bool)> {
        parse_number(text, locale).map(|n| (n.value, n.integer))
    }

    #[test]
    fn parses_dot_locale_numbers() {
        assert_eq!(num("1234", Locale::Dot), Some((dec("1234"), true)));
        assert_eq!(num("1,234.56", Locale::Dot), Some((dec("1234.56"), false)));
        assert_eq!(num("1,234,567", Locale::Dot), Some((dec("1234567"), true)));
        assert_eq!(num("-0.5", Locale::Dot), Some((dec("-0.5"), false)));
        assert_eq!(num("+3", Locale::Dot), Some((dec("3"), true)));
        assert_eq!(num("(12.50)", Locale::Dot), Some((dec("-12.50"), false)));
        assert_eq!(num("\u{2212}7", Locale::Dot), Some((dec("-7"), true)));
        assert_eq!(num("1 234.5", Locale::Dot), Some((dec("1234.5"), false)));
        assert_eq!(num(".5", Locale::Dot), Some((dec("0.5"), false)));
        assert_eq!(num("0", Locale::Dot), Some((dec("0"), true)));
    }

    #[test]
    fn parses_comma_locale_numbers() {
        assert_eq!(num("1.097,60", Locale::Comma), Some((dec("1097.60"), false)));
        assert_eq!(num("9,80", Locale::Comma), Some((dec("9.80"), false)));
        assert_eq!(num("1.234.567", Locale::Comma), Some((dec("1234567"), true)));
        assert_eq!(num("-1.234,5", Locale::Comma), Some((dec("-1234.5"), false)));
        assert_eq!(num("1 234,5", Locale::Comma), Some((dec("1234.5"), false)));
    }

    #[test]
    fn rejects_what_is_not_a_plain_number() {
        for text in ["", "-", "1,5", "12,34.5", "1,2345", "1.2.3", "$12", "12 USD", "007", "01310", "1.", "abc"] {
            assert_eq!(parse_number(text, Locale::Dot), None, "{text:?} in Dot");
        }
        for text in ["14.50", "1,234.56", "1.23", "1..2"] {
            assert_eq!(parse_number(text, Locale::Comma), None, "{text:?} in Comma");
        }
        assert_eq!(parse_number("99999999999999999999999999999999", Locale::Dot), None);
    }

    #[test]
    fn parses_scientific_notation_as_decimals() {
        let dot = |text| num(text, Locale::Dot);
        assert_eq!(dot("1e-5"), Some((dec("0.00001"), false)));
        assert_eq!(dot("5.2e-05"), Some((dec("0.000052"), false)));
        assert_eq!(dot("5.2E+03"), Some((dec("5200"), false)));
        assert_eq!(dot("-3.1e2"), Some((dec("-310"), false)));
        assert_eq!(dot("+2.5E0"), Some((dec("2.5"), false)));
        assert_eq!(dot("(4e1)"), Some((dec("-40"), false)));
        assert_eq!(dot(".5e1"), Some((dec("5"), false)));
        assert_eq!(dot("0e-50"), Some((dec("0"), false)));
        assert_eq!(dot("1.50e-27"), Some((dec("0.0000000000000000000000000015"), false)));
        assert_eq!(dot("7.9e28"), Some((dec("79000000000000000000000000000"), false)));
        assert_eq!(num("1,5e3", Locale::Comma), Some((dec("1500"), false)));
        assert_eq!(num("-2,25E-2", Locale::Comma), Some((dec("-0.0225"), false)));
        assert_eq!(locale_hint("5.2e-05"), LocaleHint::Dot);
        assert_eq!(locale_hint("1,5e3"), LocaleHint::Comma);
        assert_eq!(locale_hint("1e5"), LocaleHint::Neither);
    }

    #[test]
    fn rejects_what_only_looks_scientific() {
        for text in [
            "1e", "e5", "E", "e", "-e5", "1e+", "1e-", "1e5.0", "1ee5", "1e5e5", "1e+-5", "1.e5", "1.2.3e4", "01e5",
            "1,234e3", "1 234e3", "1e1234", "1e29", "1e-29", "2e999", "v1.2e3", "1.2e3b", "1e 5", "1 e5", "0x1e5",
            "123e4567",
        ] {
            assert_eq!(parse_number(text, Locale::Dot), None, "{text:?} in Dot");
        }
        for text in ["1.5e3", "1.234,5e3", "1,e3", ",e3"] {
            assert_eq!(parse_number(text, Locale::Comma), None, "{text:?} in Comma");
        }
    }

    #[test]
    fn knows_the_missing_value_markers_and_nothing_else() {
        for marker in ["NA", "na", "N/A", "n/a", "#N/A", "NaN", "NAN", "null", "NULL", "Null", "-", "—"] {
            assert!(is_missing_marker(marker), "{marker:?}");
        }
        for value in ["", "N", "none", "None", "nil", "--", "–", "#N/A!", "n.a.", "0", "NA NA", "#VALUE!"] {
            assert!(!is_missing_marker(value), "{value:?}");
        }
    }

    #[test]
    fn hints_only_when_unambiguous() {
        assert_eq!(locale_hint("14.50"), LocaleHint::Dot);
        assert_eq!(locale_hint("1,234.56"), LocaleHint::Dot);
        assert_eq!(locale_hint("9,80"), LocaleHint::Comma);
        assert_eq!(locale_hint("1.097,60"), LocaleHint::Comma);
        assert_eq!(locale_hint("1.234.567"), LocaleHint::Comma);
        assert_eq!(locale_hint("1.234"), LocaleHint::Neither);
        assert_eq!(locale_hint("1,234"), LocaleHint::Neither);
        assert_eq!(locale_hint("42"), LocaleHint::Neither);
        assert_eq!(locale_hint("West"), LocaleHint::Neither);
    }

    #[test]
    fn parses_dates() {
        let d = |y, m, day| Date::from_calendar_date(y, Month::try_from(m).unwrap(), day).unwrap();
        assert_eq!(parse_date("2024-03-01"), Some(DateCell::Iso(d(2024, 3, 1))));
        assert_eq!(parse_date("2024-03-01T10:15:00Z"), Some(DateCell::Iso(d(2024, 3, 1))));
        assert_eq!(parse_date("2024-03-01 10:15"), Some(DateCell::Iso(d(2024, 3, 1))));
        assert_eq!(
            parse_date("25/03/2025"),
            Some(DateCell::Slashed { day_first: Some(d(2025, 3, 25)), month_first: None })
        );
        assert_eq!(
            parse_date("03/04/2025"),
            Some(DateCell::Slashed { day_first: Some(d(2025, 4, 3)), month_first: Some(d(2025, 3, 4)) })
        );
        assert_eq!(
            parse_date("12.31.2025"),
            Some(DateCell::Slashed { day_first: None, month_first: Some(d(2025, 12, 31)) })
        );
        for text in ["2024-02-30", "2024-13-01", "32/13/2025", "1/2/25", "2025", "1.234", "a/b/cdef", "2024-3-1"] {
            assert_eq!(parse_date(text), None, "{text:?}");
        }
    }

    #[test]
    fn formats_with_thousands_separators() {
        assert_eq!(format_decimal(dec("1234.5"), 2, Locale::Dot), "1,234.50");
        assert_eq!(format_decimal(dec("1234.5"), 2, Locale::Comma), "1.234,50");
        assert_eq!(format_decimal(dec("-1234567.005"), 2, Locale::Dot), "-1,234,567.01");
        assert_eq!(format_decimal(dec("999"), 0, Locale::Dot), "999");
        assert_eq!(format_decimal(dec("-0.001"), 2, Locale::Dot), "0.00");
        assert_eq!(format_decimal(dec("0.1") + dec("0.2"), 2, Locale::Dot), "0.30");
        assert_eq!(format_count(1_000_000, Locale::Comma), "1.000.000");
    }

    #[test]
    fn statistics_that_are_not_zero_never_show_as_zero() {
        assert_eq!(format_statistic(dec("0.0033333333333333333333333333"), 2, Locale::Dot), "0.00333");
        assert_eq!(format_statistic(dec("-0.000000004"), 6, Locale::Comma), "-0,00000000400");
        assert_eq!(format_statistic(dec("0.001"), 2, Locale::Dot), "0.00100");
        assert_eq!(format_statistic(dec("0.005"), 2, Locale::Dot), "0.01");
        assert_eq!(format_statistic(dec("1234.5678"), 2, Locale::Dot), "1,234.57");
        assert_eq!(format_statistic(Decimal::ZERO, 2, Locale::Dot), "0.00");
        assert_eq!(
            format_statistic(dec("0.0000000000000000000000000001"), 2, Locale::Dot),
            "0.0000000000000000000000000001"
        );
    }
}
