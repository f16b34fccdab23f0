//! Real samples and crafted data rendered to PDF and HTML, checked by their text.

use std::str::FromStr;

use rust_decimal::Decimal;
use sluice_report::{ColumnKind, Locale};

use crate::support::{out_dir, pdf_text_and_pages, render, sample};

fn kinds(report: &sluice_report::Report) -> Vec<(String, ColumnKind)> {
    report.summary.columns.iter().map(|c| (c.name.clone(), c.kind)).collect()
}

/// Sums a column independently of the crate, with the given decimal separator.
fn column_sum(data: &str, delimiter: char, column: usize, comma: bool) -> Decimal {
    data.lines()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let cell = line.trim_end_matches('\r').split(delimiter).nth(column).unwrap();
            let plain = if comma { cell.replace('.', "").replace(',', ".") } else { cell.replace(',', "") };
            Decimal::from_str(&plain).unwrap()
        })
        .sum()
}

fn group(value: Decimal, comma: bool) -> String {
    let text = format!("{value:.2}");
    let (int, frac) = text.split_once('.').unwrap();
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(if comma { '.' } else { ',' });
        }
        out.push(c);
    }
    format!("{out}{}{frac}", if comma { ',' } else { '.' })
}

#[test]
fn renders_the_english_sales_sample() {
    let data = sample("sales.csv");
    let report = render("sales.csv", &data).unwrap();
    assert_eq!(
        kinds(&report),
        vec![
            ("date".into(), ColumnKind::Date),
            ("region".into(), ColumnKind::Text),
            ("product".into(), ColumnKind::Text),
            ("units".into(), ColumnKind::Integer),
            ("unit_price".into(), ColumnKind::Decimal),
            ("total".into(), ColumnKind::Decimal),
        ]
    );
    assert_eq!(report.summary.locale, Locale::Dot);
    assert_eq!(report.summary.rows, 200);
    let total = group(column_sum(&String::from_utf8(data).unwrap(), ',', 5, false), false);
    std::fs::write(out_dir().join("sales.html"), &report.html).unwrap();
    assert!(report.html.contains(&total), "HTML lacks the total {total}");
    let (text, pages) = pdf_text_and_pages(&report.pdf, "sales");
    assert!(pages >= 2, "{pages} pages");
    assert!(text.contains(&total), "PDF lacks the total {total}:\n{text}");
    assert!(text.contains("sales") && text.contains("Generated 2025-11-25 14:03 UTC"), "{text}");
    assert!(text.contains("total by region") && text.contains("per month"), "charts' titles: {text}");
}

#[test]
fn renders_the_brazilian_sample() {
    let data = sample("vendas.csv");
    let report = render("vendas.csv", &data).unwrap();
    assert_eq!(report.summary.locale, Locale::Comma);
    let names: Vec<(String, ColumnKind)> = kinds(&report);
    assert_eq!(names.first(), Some(&("data".to_owned(), ColumnKind::Date)), "BOM stripped from the first name");
    assert_eq!(names.get(4).map(|c| c.1), Some(ColumnKind::Integer));
    assert_eq!(names.get(5).map(|c| c.1), Some(ColumnKind::Decimal));
    assert_eq!(names.get(6).map(|c| c.1), Some(ColumnKind::Decimal));
    let text = String::from_utf8(data[3..].to_vec()).unwrap();
    let total = group(column_sum(&text, ';', 6, true), true);
    std::fs::write(out_dir().join("vendas.html"), &report.html).unwrap();
    assert!(report.html.contains(&total), "HTML lacks the total {total}");
    assert!(report.html.contains("dd/mm/yyyy"));
    let (pdf_text, pages) = pdf_text_and_pages(&report.pdf, "vendas");
    assert!(pages >= 2);
    assert!(pdf_text.contains(&total), "PDF lacks the total {total}:\n{pdf_text}");
    assert!(pdf_text.contains("Requeijão cremoso 200 g"), "accents survive");
}

#[test]
fn sums_decimals_exactly() {
    let report = render("exact.csv", b"item,amount\na,0.1\nb,0.2\n").unwrap();
    assert!(report.html.contains(r#"<td class="num strong">0.30</td>"#), "{}", report.html);
    let (text, _) = pdf_text_and_pages(&report.pdf, "exact");
    assert!(text.contains("0.30"));
    let many: String = std::iter::once("v\n".to_owned()).chain((0..1000).map(|_| "0.01\n".to_owned())).collect();
    let report = render("many.csv", many.as_bytes()).unwrap();
    assert!(report.html.contains(r#"<td class="num strong">10.00</td>"#));
}

#[test]
fn values_from_the_file_are_inert_in_html_and_pdf() {
    let data = "name,formula,amount\n\"<script>alert(1)</script>\",\"=cmd|' /C calc'!A0\",1\n\
                \"<img src=x onerror=alert(2)>\",\"#eval(\"\"1+1\"\") ]  [ $x$ {{title}}\",2\n";
    let report = render("<b>evil</b>.csv", data.as_bytes()).unwrap();
    let html = &report.html;
    std::fs::write(out_dir().join("hostile.html"), html).unwrap();
    assert!(!html.contains("<script"), "a script tag made it through");
    assert!(!html.contains("<img") && !html.contains("<b>evil"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("=cmd|&#39; /C calc&#39;!A0"));
    assert!(html.contains("#eval(&quot;1+1&quot;) ]  [ $x$ {{title}}"), "slots in data are not expanded");
    for tag in html.split('<').skip(1).filter_map(|rest| rest.split_once('>').map(|(tag, _)| tag)) {
        for attribute in ["src=", "href=", "on"] {
            let found = tag.split_whitespace().skip(1).any(|word| word.starts_with(attribute) && word.contains('='));
            assert!(!found, "a tag in the HTML has {attribute}: <{tag}>");
        }
        assert!(!tag.starts_with("script") && !tag.starts_with("link") && !tag.starts_with("img"), "<{tag}>");
    }
    assert!(!html.contains("url(") && !html.contains("@import"));
    let (text, _) = pdf_text_and_pages(&report.pdf, "hostile");
    assert!(text.contains("<script>alert(1)</script>"), "{text}");
    assert!(text.contains("=cmd|' /C calc'!A0"), "{text}");
    assert!(text.contains("#eval(\"1+1\")"), "typst markup in data is shown, not run: {text}");
}

#[test]
fn reads_semicolons_tabs_quotes_bom_and_crlf() {
    let semicolon = "\u{feff}cliente;valor\r\n\"Silva; Filhos\";1.234,50\r\n\"Linha\r\ndupla\";10,00\r\n\r\n";
    let report = render("s.csv", semicolon.as_bytes()).unwrap();
    assert_eq!(report.summary.rows, 2);
    assert_eq!(report.summary.locale, Locale::Comma);
    assert_eq!(report.summary.columns[0].name, "cliente");
    assert!(report.html.contains("1.244,50"));
    assert!(report.html.contains("Silva; Filhos"));
    let tab = "city\tpeople\nLisbon\t545,923\nPorto\t231,800\n";
    let report = render("t.tsv", tab.as_bytes()).unwrap();
    assert_eq!(report.summary.columns[1].kind, ColumnKind::Integer);
    assert!(report.html.contains("777,723"));
}

#[test]
fn infers_types_and_date_orders() {
    let data = "when,us_date,code,qty,price,flag\n\
                2024-03-01,12/31/2024,007,1,\"1,234.5\",yes\n\
                2024-04-15,01/02/2024,010,-2,3,no\n\
                ,,,,,\n\
                2024-04-16,,011,3,(4.25),\n";
    let report = render("types.csv", data.as_bytes()).unwrap();
    assert_eq!(
        kinds(&report).into_iter().map(|(_, k)| k).collect::<Vec<_>>(),
        vec![
            ColumnKind::Date,
            ColumnKind::Date,
            ColumnKind::Text,
            ColumnKind::Integer,
            ColumnKind::Decimal,
            ColumnKind::Text
        ]
    );
    assert!(report.html.contains("mm/dd/yyyy"));
    assert!(report.html.contains("1,233.25"), "1234.5 + 3 - 4.25");
    assert_eq!(report.summary.rows, 4, "the all-empty row is a row");
}

#[test]
fn reads_json_arrays() {
    let data = r#"[{"city": "Lisbon", "people": 545923, "share": 0.1},
                  {"city": "Porto", "people": 231800, "share": 0.2, "note": null},
                  {"people": 10, "city": "<x>", "share": 0.25, "note": "late key"}]"#;
    let report = render("cities.json", data.as_bytes()).unwrap();
    assert_eq!(report.summary.rows, 3);
    assert_eq!(
        kinds(&report),
        vec![
            ("city".into(), ColumnKind::Text),
            ("people".into(), ColumnKind::Integer),
            ("share".into(), ColumnKind::Decimal),
            ("note".into(), ColumnKind::Text),
        ]
    );
    assert!(report.html.contains("777,733") && report.html.contains("0.55"));
    assert!(report.html.contains("&lt;x&gt;"));
}

#[test]
fn characters_xml_forbids_in_charted_labels_and_names_still_render() {
    // U+FFFE and U+FFFF (noncharacters), and control characters, are not allowed in XML, so not in a chart's SVG.
    let data = "cat,val\u{ffff}\n\u{fffe}X,1\n\u{ffff}Y,2\n\"Z\u{1}\u{b}\u{c}\r\",3\n";
    let report = render("xml.csv", data.as_bytes()).unwrap();
    for forbidden in ['\u{fffe}', '\u{ffff}', '\u{1}', '\u{b}', '\u{c}'] {
        assert!(!report.html.contains(forbidden), "{forbidden:?} reached the HTML");
    }
    assert!(report.html.contains("\u{fffd}X") && report.html.contains("val\u{fffd}"), "replaced by U+FFFD");
    let (text, _) = pdf_text_and_pages(&report.pdf, "xml");
    assert!(text.contains(" by cat"), "the chart is in the PDF: {text}");
}

#[test]
fn excel_sep_line_names_the_delimiter_and_is_not_the_header() {
    let report = render("excel_sep.csv", b"sep=;\na;b\n1;2,5\n3;4,5\n").unwrap();
    assert_eq!(kinds(&report), vec![("a".into(), ColumnKind::Integer), ("b".into(), ColumnKind::Decimal)]);
    assert_eq!(report.summary.locale, Locale::Comma);
    assert!(report.html.contains(r#"<td class="num strong">7,00</td>"#), "the sum of b");
    // The delimiter it names wins over sniffing, and line numbers still count the line.
    let report = render("sep_pipe.csv", "\u{feff}sep=|\r\nname|note\r\nx|a,b;c\r\n".as_bytes()).unwrap();
    assert_eq!(kinds(&report).len(), 2);
    let error = crate::support::error("sep.csv", b"sep=,\r\na,b\r\n1,2\r\n3\r\n");
    assert!(error.to_string().contains("line 4 has 1 cells"), "{error}");
    // A header that only starts like one is a header.
    let report = render("sepx.csv", b"sep=x,y\n1,2\n").unwrap();
    assert_eq!(report.summary.columns[0].name, "sep=x");
}
