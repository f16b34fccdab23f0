//! Vector charts as SVG text: horizontal bars (sums by category) and a line (sums by month). Every label is
//! XML-escaped; the SVG has no scripts, links or external references, so it can be inlined in HTML and handed
//! to the typesetter as is.

use std::fmt::Write;

use sluice_core::escape_html;

use crate::settings::Locale;

/// Charts are drawn for a half-page column (about 85 mm), so 11 units print at about 8 pt.
const WIDTH: f64 = 340.0;
const FONT: &str = "Libertinus Serif, Georgia, serif";
const INK: &str = "#334155";
const MUTED: &str = "#64748b";
const GRID: &str = "#e2e8f0";
const ACCENT: &str = "#2f5d8a";
const OTHER: &str = "#94a3b8";

/// A bar or point: its label, its value for geometry, and the value as displayed.
#[derive(Clone, Debug)]
pub(crate) struct Datum {
    pub label: String,
    pub value: f64,
    pub display: String,
    pub muted: bool,
}

fn shorten(label: &str, max: usize) -> String {
    match label.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", label.get(..cut).unwrap_or(label).trim_end()),
        None => label.to_owned(),
    }
}

fn open_svg(out: &mut String, height: f64, title: &str) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="{FONT}" font-size="11" role="img"><title>{}</title>"#,
        escape_html(title)
    );
}

/// Horizontal bars, one per datum, with labels on the left and values on the right.
pub(crate) fn bar_chart(title: &str, data: &[Datum]) -> String {
    let row = 22.0;
    let height = row * data.len() as f64 + 12.0;
    let (label_width, value_width) = (104.0, 76.0);
    let (x0, x1) = (label_width + 8.0, WIDTH - value_width);
    let low = data.iter().map(|d| d.value).fold(0.0, f64::min);
    let high = data.iter().map(|d| d.value).fold(0.0, f64::max);
    let span = if high - low > 0.0 { high - low } else { 1.0 };
    let scale = (x1 - x0) / span;
    let zero = x0 + (-low) * scale;
    let mut out = String::new();
    open_svg(&mut out, height, title);
    let _ = write!(out, r#"<line x1="{zero:.1}" y1="4" x2="{zero:.1}" y2="{:.1}" stroke="{GRID}"/>"#, height - 4.0);
    for (index, datum) in data.iter().enumerate() {
        let y = 6.0 + row * index as f64;
        let end = zero + datum.value * scale;
        let (left, width) = if end >= zero { (zero, end - zero) } else { (end, zero - end) };
        let color = if datum.muted { OTHER } else { ACCENT };
        let _ = write!(
            out,
            r#"<text x="{label_width}" y="{:.1}" text-anchor="end" fill="{INK}">{}</text><rect x="{left:.1}" y="{:.1}" width="{:.1}" height="14" rx="2" fill="{color}"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="{INK}">{}</text>"#,
            y + 11.0,
            escape_html(&shorten(&datum.label, 18)),
            y + 1.0,
            width.max(0.5),
            WIDTH - 2.0,
            y + 11.0,
            escape_html(&datum.display),
        );
    }
    out.push_str("</svg>");
    out
}

/// Round tick values covering `low..=high`.
fn ticks(low: f64, high: f64) -> Vec<f64> {
    let span = if high - low > 0.0 { high - low } else { high.abs().max(1.0) };
    let raw = span / 4.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|f| f * magnitude).find(|s| *s >= raw).unwrap_or(magnitude * 10.0);
    let start = (low / step).floor() * step;
    let mut ticks = vec![start];
    let mut tick = start;
    while tick < high - step * 1e-9 && ticks.len() < 12 {
        tick += step;
        ticks.push(tick);
    }
    if ticks.len() < 2 {
        ticks.push(start + step);
    }
    ticks
}

/// A short axis label: `12.5k`, `3.2M`, the plain number, or for a small one as many decimals as its first two
/// significant digits need (`0.25`, `0.000005`), so that a tick that is not zero never reads as zero.
pub(crate) fn compact(value: f64, locale: Locale) -> String {
    let (scaled, suffix) = match value.abs() {
        v if v >= 1e9 => (value / 1e9, "B"),
        v if v >= 1e6 => (value / 1e6, "M"),
        v if v >= 1e4 => (value / 1e3, "k"),
        _ => (value, ""),
    };
    let text = if scaled != 0.0 && scaled.abs() < 1.0 {
        let decimals = (1.0 - scaled.abs().log10().floor()).clamp(1.0, 30.0) as usize;
        let text = format!("{scaled:.decimals$}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        let decimals = if scaled.fract().abs() < 1e-9 || scaled.abs() >= 100.0 { 0 } else { 1 };
        format!("{scaled:.decimals$}")
    };
    let text = if locale == Locale::Comma { text.replace('.', ",") } else { text };
    format!("{text}{suffix}")
}

/// A line over the data in order (months), with a light area under it and round y ticks.
pub(crate) fn line_chart(title: &str, data: &[Datum], locale: Locale) -> String {
    let height = 180.0;
    let (left, right, top, bottom) = (40.0, 22.0, 10.0, 30.0);
    let low = data.iter().map(|d| d.value).fold(0.0, f64::min);
    let high = data.iter().map(|d| d.value).fold(0.0, f64::max);
    let ticks = ticks(low, high);
    let (y_low, y_high) = (ticks.first().copied().unwrap_or(0.0), ticks.last().copied().unwrap_or(1.0));
    let y_span = if y_high - y_low > 0.0 { y_high - y_low } else { 1.0 };
    let plot_height = height - top - bottom;
    let y_of = |v: f64| top + plot_height * (1.0 - (v - y_low) / y_span);
    let plot_width = WIDTH - left - right;
    let x_of = |i: usize| {
        if data.len() <= 1 { left + plot_width / 2.0 } else { left + plot_width * i as f64 / (data.len() - 1) as f64 }
    };
    let mut out = String::new();
    open_svg(&mut out, height, title);
    for tick in &ticks {
        let y = y_of(*tick);
        let _ = write!(
            out,
            r#"<line x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{GRID}"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="{MUTED}" font-size="10">{}</text>"#,
            WIDTH - right,
            left - 6.0,
            y + 3.5,
            escape_html(&compact(*tick, locale)),
        );
    }
    let points: Vec<(f64, f64)> = data.iter().enumerate().map(|(i, d)| (x_of(i), y_of(d.value))).collect();
    if let (Some(first), Some(last)) = (points.first(), points.last()) {
        let base = y_of(0.0f64.clamp(y_low, y_high));
        let mut area = format!("M{:.1},{base:.1}", first.0);
        let mut line = String::new();
        for (index, (x, y)) in points.iter().enumerate() {
            let _ = write!(area, " L{x:.1},{y:.1}");
            let _ = write!(line, "{}{x:.1},{y:.1}", if index == 0 { "M" } else { " L" });
        }
        let _ = write!(area, " L{:.1},{base:.1} Z", last.0);
        let _ = write!(
            out,
            r#"<path d="{area}" fill="{ACCENT}" fill-opacity="0.12"/><path d="{line}" fill="none" stroke="{ACCENT}" stroke-width="2" stroke-linejoin="round"/>"#
        );
        if points.len() <= 48 {
            for (x, y) in &points {
                let _ = write!(out, r#"<circle cx="{x:.1}" cy="{y:.1}" r="2.6" fill="{ACCENT}"/>"#);
            }
        }
    }
    let every = data.len().div_ceil(5).max(1);
    for (index, datum) in data.iter().enumerate() {
        if index % every == 0 {
            let _ = write!(
                out,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="{MUTED}" font-size="10">{}</text>"#,
                x_of(index),
                height - bottom + 16.0,
                escape_html(&datum.label),
            );
        }
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datum(label: &str, value: f64) -> Datum {
        Datum { label: label.into(), value, display: value.to_string(), muted: false }
    }

    #[test]
    fn escapes_labels() {
        let svg = bar_chart("<b>", &[datum("<script>alert(1)</script>", 3.0), datum("a&b", -1.0)]);
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;"));
        assert!(svg.contains("a&amp;b"));
        assert!(svg.contains("<title>&lt;b&gt;</title>"));
    }

    #[test]
    fn draws_lines_for_one_or_many_points() {
        assert!(line_chart("t", &[datum("2025-01", 5.0)], Locale::Dot).contains("<circle"));
        let many: Vec<Datum> = (0..100).map(|i| datum(&format!("m{i}"), f64::from(i))).collect();
        let svg = line_chart("t", &many, Locale::Dot);
        assert!(svg.contains("<path") && !svg.contains("<circle"));
        assert!(line_chart("t", &[], Locale::Dot).ends_with("</svg>"));
    }

    #[test]
    fn picks_round_ticks_and_compact_labels() {
        assert_eq!(ticks(0.0, 95.0), vec![0.0, 25.0, 50.0, 75.0, 100.0]);
        assert_eq!(compact(125_000.0, Locale::Dot), "125k");
        assert_eq!(compact(1_500_000.0, Locale::Comma), "1,5M");
        assert_eq!(compact(250.0, Locale::Dot), "250");
        assert_eq!(compact(0.25, Locale::Dot), "0.25");
        assert_eq!(compact(0.5, Locale::Comma), "0,5");
        assert_eq!(compact(0.000_000_05, Locale::Dot), "0.00000005");
        assert_eq!(compact(-0.000_002_5, Locale::Dot), "-0.0000025");
        assert_eq!(compact(0.0, Locale::Dot), "0");
    }
}
