//! The HTML report: fragments built from the [`Model`] with every value escaped, poured into the layout
//! template's `{{slot}}`s in a single pass (so nothing from the data can form a slot of its own).

use std::fmt::Write;

use crate::model::{ChartView, Model};
use sluice_core::escape_html as escape;

/// The slots the layout template may use.
pub(crate) const SLOTS: &[&str] = &[
    "title",
    "source",
    "generated",
    "format",
    "rows",
    "column_count",
    "locale",
    "columns",
    "numeric",
    "text",
    "dates",
    "charts",
    "preview",
    "notes",
];

/// The slot names a template uses, in order, or the first malformed one.
pub(crate) fn slots_of(template: &str) -> Result<Vec<&str>, String> {
    let mut found = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = rest.get(start + 2..).unwrap_or_default();
        let Some(end) = after.find("}}") else { return Err("a `{{` is never closed".to_owned()) };
        let name = after.get(..end).unwrap_or_default().trim();
        if !SLOTS.contains(&name) {
            return Err(format!("unknown slot {{{{{name}}}}}; known slots: {}", SLOTS.join(", ")));
        }
        found.push(name);
        rest = after.get(end + 2..).unwrap_or_default();
    }
    Ok(found)
}

/// Fills the layout with the model.
pub(crate) fn render(template: &str, model: &Model) -> String {
    let mut out = String::with_capacity(template.len() + 64 * 1024);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(rest.get(..start).unwrap_or_default());
        let after = rest.get(start + 2..).unwrap_or_default();
        let Some(end) = after.find("}}") else { break };
        let name = after.get(..end).unwrap_or_default().trim();
        out.push_str(&fragment(name, model));
        rest = after.get(end + 2..).unwrap_or_default();
    }
    out.push_str(rest);
    out
}

fn fragment(name: &str, model: &Model) -> String {
    match name {
        "title" => escape(&model.title),
        "source" => escape(&model.source),
        "generated" => escape(&model.generated),
        "format" => escape(&model.format),
        "rows" => escape(&model.rows),
        "column_count" => escape(&model.column_count),
        "locale" => escape(model.locale),
        "columns" => columns(model),
        "numeric" => numeric(model),
        "text" => text(model),
        "dates" => dates(model),
        "charts" => charts(model),
        "preview" => preview(model),
        "notes" => notes(model),
        _ => String::new(),
    }
}

fn columns(model: &Model) -> String {
    let mut out = String::from(
        r#"<table class="grid"><thead><tr><th>Column</th><th>Type</th><th class="num">Filled</th><th class="num">Empty</th></tr></thead><tbody>"#,
    );
    for column in &model.columns {
        let _ = write!(
            out,
            r#"<tr><td>{}</td><td><span class="tag tag-{}">{}</span></td><td class="num">{}</td><td class="num">{}</td></tr>"#,
            escape(&column.name),
            column.kind,
            column.kind,
            escape(&column.filled),
            escape(&column.empty)
        );
    }
    out.push_str("</tbody></table>");
    out
}

fn numeric(model: &Model) -> String {
    if model.numeric.is_empty() {
        return r#"<p class="muted">No numeric columns.</p>"#.to_owned();
    }
    let mut out = String::from(
        r#"<table class="grid"><thead><tr><th>Column</th><th class="num">Count</th><th class="num">Sum</th><th class="num">Min</th><th class="num">Max</th><th class="num">Mean</th><th class="num">Median</th></tr></thead><tbody>"#,
    );
    for n in &model.numeric {
        let _ = write!(
            out,
            r#"<tr><td>{}</td><td class="num">{}</td><td class="num strong">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td></tr>"#,
            escape(&n.name),
            escape(&n.count),
            escape(&n.sum),
            escape(&n.min),
            escape(&n.max),
            escape(&n.mean),
            escape(&n.median)
        );
    }
    out.push_str("</tbody></table>");
    out
}

fn text(model: &Model) -> String {
    if model.text.is_empty() {
        return r#"<p class="muted">No text columns.</p>"#.to_owned();
    }
    let mut out = String::from(r#"<div class="cards">"#);
    for column in &model.text {
        let _ = write!(
            out,
            r#"<section class="card"><h3>{}</h3><p class="muted">{} distinct values{}</p><table class="grid compact"><thead><tr><th>Value</th><th class="num">Count</th><th class="num">Share</th></tr></thead><tbody>"#,
            escape(&column.name),
            escape(&column.distinct),
            if column.approximate { " (estimated)" } else { "" }
        );
        for top in &column.top {
            let _ = write!(
                out,
                r#"<tr><td>{}</td><td class="num">{}</td><td class="num">{}</td></tr>"#,
                escape(&top.value),
                escape(&top.count),
                escape(&top.share)
            );
        }
        out.push_str("</tbody></table></section>");
    }
    out.push_str("</div>");
    out
}

fn dates(model: &Model) -> String {
    if model.dates.is_empty() {
        return r#"<p class="muted">No date columns.</p>"#.to_owned();
    }
    let mut out = String::from(
        r#"<table class="grid"><thead><tr><th>Column</th><th>Written as</th><th class="num">Dates</th><th class="num">First</th><th class="num">Last</th></tr></thead><tbody>"#,
    );
    for d in &model.dates {
        let _ = write!(
            out,
            r#"<tr><td>{}</td><td>{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td></tr>"#,
            escape(&d.name),
            escape(d.order),
            escape(&d.count),
            escape(&d.first),
            escape(&d.last)
        );
    }
    out.push_str("</tbody></table>");
    out
}

fn chart_cards(out: &mut String, charts: &[ChartView]) {
    for chart in charts {
        // The SVG is our own markup with every label escaped (see `chart`).
        let _ = write!(
            out,
            r#"<figure class="card chart"><figcaption>{}</figcaption>{}</figure>"#,
            escape(&chart.title),
            chart.svg
        );
    }
}

fn charts(model: &Model) -> String {
    if model.bar_charts.is_empty() && model.line_charts.is_empty() {
        return r#"<p class="muted">Nothing to chart: no numeric column to sum, or no text or date column to group by.</p>"#
            .to_owned();
    }
    let mut out = String::from(r#"<div class="charts">"#);
    chart_cards(&mut out, &model.line_charts);
    chart_cards(&mut out, &model.bar_charts);
    out.push_str("</div>");
    out
}

fn preview(model: &Model) -> String {
    let p = &model.preview;
    let mut out = String::from(r#"<div class="scroll"><table class="grid data"><thead><tr><th class="num">#</th>"#);
    for (header, numeric) in p.headers.iter().zip(&p.numeric) {
        let _ = write!(out, r#"<th{}>{}</th>"#, if *numeric { r#" class="num""# } else { "" }, escape(header));
    }
    out.push_str("</tr></thead><tbody>");
    for (index, row) in p.rows.iter().enumerate() {
        let _ = write!(out, r#"<tr><td class="num muted">{}</td>"#, index + 1);
        for (cell, numeric) in row.iter().zip(&p.numeric) {
            let _ = write!(out, r#"<td{}>{}</td>"#, if *numeric { r#" class="num""# } else { "" }, escape(cell));
        }
        out.push_str("</tr>");
    }
    let _ = write!(out, r#"</tbody></table></div><p class="muted caption">{}</p>"#, escape(&p.caption));
    out
}

fn notes(model: &Model) -> String {
    if model.notes.is_empty() {
        return String::new();
    }
    let mut out = String::from(r#"<ul class="notes">"#);
    for note in &model.notes {
        let _ = write!(out, "<li>{}</li>", escape(note));
    }
    out.push_str("</ul>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_slots_and_rejects_unknown_ones() {
        assert_eq!(slots_of("<h1>{{title}}</h1>{{ rows }}").unwrap(), vec!["title", "rows"]);
        assert!(slots_of("{{titel}}").unwrap_err().contains("unknown slot {{titel}}"));
        assert!(slots_of("{{title").is_err());
    }
}
