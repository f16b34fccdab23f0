//! Streaming per-column statistics with bounded memory.
//!
//! - Numbers: count, sum, min, max exactly (`Decimal`, one pass). The median is exact while the column has at
//!   most `median_cap` distinct values (a value-to-count map); past that the map is dropped and the median comes
//!   from a P² estimator (Jain & Chlamtac, 1985) fed every value from the start, and is labelled approximate.
//! - Text: value counts in a map bounded by entries and bytes. Once full, new values are no longer added, so the
//!   top ten are labelled approximate, and the distinct count comes from a HyperLogLog sketch (±2%) fed every
//!   value.
//! - Dates: min and max under both day/month readings of slashed dates, until the data rules one out.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use time::Date;

use crate::number::{DateCell, Number};

/// Numbers seen in a column that is still numeric.
#[derive(Debug)]
pub(crate) struct NumAcc {
    pub count: u64,
    pub sum: Decimal,
    pub min: Decimal,
    pub max: Decimal,
    pub max_scale: u32,
    pub all_integer: bool,
    values: Option<BTreeMap<Decimal, u64>>,
    median_cap: usize,
    p2: P2,
}

/// The median of a column, exact or estimated.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Median {
    Exact(Decimal),
    Approximate(f64),
}

impl NumAcc {
    pub(crate) fn new(median_cap: usize) -> Self {
        Self {
            count: 0,
            sum: Decimal::ZERO,
            min: Decimal::MAX,
            max: Decimal::MIN,
            max_scale: 0,
            all_integer: true,
            values: Some(BTreeMap::new()),
            median_cap,
            p2: P2::default(),
        }
    }

    /// Adds a number; false when the sum overflows (the column then cannot be summed exactly).
    pub(crate) fn add(&mut self, number: Number) -> bool {
        let value = number.value;
        let Some(sum) = self.sum.checked_add(value) else { return false };
        self.sum = sum;
        self.count += 1;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.max_scale = self.max_scale.max(value.scale());
        self.all_integer &= number.integer;
        self.p2.add(value.to_f64().unwrap_or_default());
        if let Some(values) = &mut self.values {
            let normal = value.normalize();
            if let Some(count) = values.get_mut(&normal) {
                *count += 1;
            } else if values.len() < self.median_cap {
                values.insert(normal, 1);
            } else {
                self.values = None;
            }
        }
        true
    }

    /// The mean, rounded to 28 significant digits.
    pub(crate) fn mean(&self) -> Option<Decimal> {
        (self.count > 0).then(|| self.sum.checked_div(Decimal::from(self.count))).flatten()
    }

    pub(crate) fn median(&self) -> Option<Median> {
        if self.count == 0 {
            return None;
        }
        let Some(values) = &self.values else { return Some(Median::Approximate(self.p2.estimate())) };
        let lower_rank = (self.count - 1) / 2;
        let upper_rank = self.count / 2;
        let (mut lower, mut upper, mut seen) = (None, None, 0u64);
        for (&value, &count) in values {
            let next = seen + count;
            if lower.is_none() && lower_rank < next {
                lower = Some(value);
            }
            if upper_rank < next {
                upper = Some(value);
                break;
            }
            seen = next;
        }
        let (lower, upper) = (lower?, upper?);
        let middle = lower.checked_add(upper)?.checked_div(Decimal::TWO)?;
        Some(Median::Exact(middle))
    }
}

/// The P² single-quantile estimator, for the median (p = 0.5), in constant memory.
#[derive(Debug, Default)]
struct P2 {
    count: usize,
    heights: [f64; 5],
    positions: [f64; 5],
    desired: [f64; 5],
}

impl P2 {
    const INCREMENTS: [f64; 5] = [0.0, 0.25, 0.5, 0.75, 1.0];

    fn add(&mut self, x: f64) {
        if self.count < 5 {
            self.heights[self.count] = x;
            self.count += 1;
            if self.count == 5 {
                self.heights.sort_by(f64::total_cmp);
                self.positions = [1.0, 2.0, 3.0, 4.0, 5.0];
                self.desired = [1.0, 2.0, 3.0, 4.0, 5.0];
            }
            return;
        }
        self.count += 1;
        let h = &mut self.heights;
        let cell = if x < h[0] {
            h[0] = x;
            0
        } else if x >= h[4] {
            h[4] = x;
            3
        } else {
            (1..5).find(|&i| x < h[i]).map_or(3, |i| i - 1)
        };
        for position in self.positions.iter_mut().skip(cell + 1) {
            *position += 1.0;
        }
        for (desired, increment) in self.desired.iter_mut().zip(Self::INCREMENTS) {
            *desired += increment;
        }
        for i in 1..4 {
            let n = self.positions;
            let d = self.desired[i] - n[i];
            if (d >= 1.0 && n[i + 1] - n[i] > 1.0) || (d <= -1.0 && n[i - 1] - n[i] < -1.0) {
                let s = d.signum();
                let q = self.heights;
                let parabolic = q[i]
                    + s / (n[i + 1] - n[i - 1])
                        * ((n[i] - n[i - 1] + s) * (q[i + 1] - q[i]) / (n[i + 1] - n[i])
                            + (n[i + 1] - n[i] - s) * (q[i] - q[i - 1]) / (n[i] - n[i - 1]));
                self.heights[i] = if q[i - 1] < parabolic && parabolic < q[i + 1] {
                    parabolic
                } else {
                    let j = if s > 0.0 { i + 1 } else { i - 1 };
                    q[i] + s * (q[j] - q[i]) / (n[j] - n[i])
                };
                self.positions[i] += s;
            }
        }
    }

    fn estimate(&self) -> f64 {
        if self.count >= 5 {
            return self.heights[2];
        }
        let mut first: Vec<f64> = self.heights.iter().take(self.count).copied().collect();
        first.sort_by(f64::total_cmp);
        match first.len() {
            0 => 0.0,
            n if n % 2 == 1 => first.get(n / 2).copied().unwrap_or_default(),
            n => {
                (first.get(n / 2 - 1).copied().unwrap_or_default() + first.get(n / 2).copied().unwrap_or_default())
                    / 2.0
            }
        }
    }
}

/// Value counts of a column, bounded, with a distinct-count sketch.
#[derive(Debug)]
pub(crate) struct TextAcc {
    counts: HashMap<Box<str>, u64>,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
    pub saturated: bool,
    sketch: HyperLogLog,
}

impl TextAcc {
    pub(crate) fn new(max_entries: usize, max_bytes: usize) -> Self {
        Self { counts: HashMap::new(), bytes: 0, max_entries, max_bytes, saturated: false, sketch: HyperLogLog::new() }
    }

    pub(crate) fn add(&mut self, value: &str) {
        self.sketch.add(value);
        if let Some(count) = self.counts.get_mut(value) {
            *count += 1;
        } else if !self.saturated && self.counts.len() < self.max_entries && self.bytes + value.len() <= self.max_bytes
        {
            self.bytes += value.len();
            self.counts.insert(value.into(), 1);
        } else {
            self.saturated = true;
        }
    }

    /// The number of distinct values: exact while not saturated, else estimated.
    pub(crate) fn distinct(&self) -> (u64, bool) {
        if self.saturated {
            (self.sketch.estimate().max(self.counts.len() as u64), true)
        } else {
            (self.counts.len() as u64, false)
        }
    }

    /// The `n` most frequent values, most frequent first (ties by value).
    pub(crate) fn top(&self, n: usize) -> Vec<(&str, u64)> {
        let mut all: Vec<(&str, u64)> = self.counts.iter().map(|(value, &count)| (&**value, count)).collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        all.truncate(n);
        all
    }
}

/// HyperLogLog with 2^12 registers (about 1.6% standard error), hashing with a fixed-key SipHash.
#[derive(Debug)]
struct HyperLogLog {
    registers: Vec<u8>,
}

impl HyperLogLog {
    const BITS: u32 = 12;

    fn new() -> Self {
        Self { registers: vec![0; 1 << Self::BITS] }
    }

    fn add(&mut self, value: &str) {
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(value);
        let index = (hash >> (64 - Self::BITS)) as usize;
        let rest = (hash << Self::BITS) | (1 << (Self::BITS - 1));
        let rank = rest.leading_zeros() as u8 + 1;
        if let Some(register) = self.registers.get_mut(index) {
            *register = (*register).max(rank);
        }
    }

    fn estimate(&self) -> u64 {
        let m = self.registers.len() as f64;
        let sum: f64 = self.registers.iter().map(|&r| 2f64.powi(-i32::from(r))).sum();
        let zeros = self.registers.iter().filter(|&&r| r == 0).count();
        let raw = 0.7213 / (1.0 + 1.079 / m) * m * m / sum;
        let estimate = if raw <= 2.5 * m && zeros > 0 { m * (m / zeros as f64).ln() } else { raw };
        estimate.round() as u64
    }
}

/// One reading (day-first or month-first) of a date column.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct DateReading {
    pub valid: bool,
    pub min: Option<Date>,
    pub max: Option<Date>,
}

impl DateReading {
    fn add(&mut self, date: Option<Date>) {
        match date {
            Some(date) if self.valid => {
                self.min = Some(self.min.map_or(date, |min| min.min(date)));
                self.max = Some(self.max.map_or(date, |max| max.max(date)));
            }
            _ => self.valid = false,
        }
    }
}

/// Dates seen in a column that is still a date column.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DateAcc {
    pub count: u64,
    pub day_first: DateReading,
    pub month_first: DateReading,
    pub slashed: bool,
}

impl DateAcc {
    pub(crate) fn new() -> Self {
        let valid = DateReading { valid: true, ..DateReading::default() };
        Self { count: 0, day_first: valid, month_first: valid, slashed: false }
    }

    /// Adds a date; false when no reading of the column survives.
    pub(crate) fn add(&mut self, cell: DateCell) -> bool {
        self.count += 1;
        match cell {
            DateCell::Iso(date) => {
                self.day_first.add(Some(date));
                self.month_first.add(Some(date));
            }
            DateCell::Slashed { day_first, month_first } => {
                self.slashed = true;
                self.day_first.add(day_first);
                self.month_first.add(month_first);
            }
        }
        self.day_first.valid || self.month_first.valid
    }

    /// The reading the column uses: day-first unless only month-first fits every value.
    pub(crate) fn reading(&self) -> Option<(DateReading, DateOrder)> {
        if self.day_first.valid {
            Some((self.day_first, if self.slashed { DateOrder::DayFirst } else { DateOrder::Iso }))
        } else if self.month_first.valid {
            Some((self.month_first, DateOrder::MonthFirst))
        } else {
            None
        }
    }
}

/// How a date column writes its dates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DateOrder {
    Iso,
    DayFirst,
    MonthFirst,
}

/// Sums of the charted numeric columns per category, bounded: categories past the cap go to "other".
#[derive(Debug)]
pub(crate) struct GroupSums {
    pub groups: HashMap<Box<str>, Vec<Decimal>>,
    pub other: Vec<Decimal>,
    pub overflowed: bool,
    width: usize,
    cap: usize,
}

impl GroupSums {
    pub(crate) fn new(width: usize, cap: usize) -> Self {
        Self { groups: HashMap::new(), other: vec![Decimal::ZERO; width], overflowed: false, width, cap }
    }

    pub(crate) fn add(&mut self, key: &str, slot: usize, value: Decimal) {
        let sums = if let Some(sums) = self.groups.get_mut(key) {
            sums
        } else if self.groups.len() < self.cap {
            self.groups.entry(key.into()).or_insert_with(|| vec![Decimal::ZERO; self.width])
        } else {
            self.overflowed = true;
            &mut self.other
        };
        if let Some(sum) = sums.get_mut(slot) {
            *sum = sum.saturating_add(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(text: &str) -> Number {
        Number { value: Decimal::from_str_exact(text).unwrap(), integer: !text.contains('.') }
    }

    #[test]
    fn sums_exactly_and_finds_the_median() {
        let mut acc = NumAcc::new(100);
        for v in ["0.1", "0.2", "5", "-3"] {
            assert!(acc.add(n(v)));
        }
        assert_eq!(acc.sum, Decimal::from_str_exact("2.3").unwrap());
        assert_eq!(acc.min, Decimal::from(-3));
        assert_eq!(acc.max, Decimal::from(5));
        assert_eq!(acc.median(), Some(Median::Exact(Decimal::from_str_exact("0.15").unwrap())));
        assert!(!acc.all_integer);
        let mut odd = NumAcc::new(100);
        for v in ["3", "1", "2", "2", "9"] {
            odd.add(n(v));
        }
        assert_eq!(odd.median(), Some(Median::Exact(Decimal::from(2))));
    }

    #[test]
    fn falls_back_to_an_estimated_median_past_the_cap() {
        let mut acc = NumAcc::new(10);
        for i in 0..10_001 {
            acc.add(Number { value: Decimal::from(i), integer: true });
        }
        let Some(Median::Approximate(estimate)) = acc.median() else { panic!("expected an estimate") };
        assert!((estimate - 5000.0).abs() < 100.0, "{estimate}");
        assert_eq!(acc.sum, Decimal::from(50_005_000));
    }

    #[test]
    fn bounds_text_counts_and_estimates_distinct_values() {
        let mut acc = TextAcc::new(100, 1 << 20);
        for i in 0..20_000 {
            acc.add(&format!("value {}", i % 10_000));
            acc.add("common");
        }
        let (distinct, approximate) = acc.distinct();
        assert!(approximate);
        assert!((9_500..10_500).contains(&distinct), "{distinct}");
        assert_eq!(acc.top(1), vec![("common", 20_000)]);
        let mut small = TextAcc::new(100, 1 << 20);
        ["b", "a", "b"].iter().for_each(|v| small.add(v));
        assert_eq!(small.distinct(), (2, false));
        assert_eq!(small.top(10), vec![("b", 2), ("a", 1)]);
    }
}
