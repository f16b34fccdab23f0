//! Numbers in scientific notation are decimals in CSV and TSV as they are in JSON.

use sluice_report::{ColumnKind, Locale, ReportSettings};

use crate::support::{render, render_with};

fn kind(report: &sluice_report::Report, column: &str) -> ColumnKind {
    report.summary.columns.iter().find(|c| c.name == column).map(|c| c.kind).unwrap()
}

#[test]
fn csv_scientific_notation_is_a_decimal_column() {
    let report = render("sci.csv", b"id,val\n1,5.2e-05\n2,0.5\n3,0.25\n").unwrap();
    assert_eq!(kind(&report, "val"), ColumnKind::Decimal);
    assert_eq!(report.summary.locale, Locale::Dot);
    assert!(report.html.contains("0.750052"), "the exact sum of val");

    let report = render("sci.csv", b"id,val\n1,1e-5\n2,5.2E+03\n3,-3.1e2\n").unwrap();
    assert_eq!(kind(&report, "val"), ColumnKind::Decimal);
    assert!(report.html.contains("4,890.00001"), "5200 - 310 + 0.00001");

    let json = render("sci.json", br#"[{"id":1,"val":1e-05},{"id":2,"val":1E+3}]"#).unwrap();
    assert_eq!(kind(&json, "val"), ColumnKind::Decimal);
}

#[test]
fn scientific_notation_follows_the_decimal_comma() {
    let report = render("sci.tsv", "item\tqty\na\t1,5e3\nb\t2,5\n".as_bytes()).unwrap();
    assert_eq!(report.summary.locale, Locale::Comma);
    assert_eq!(kind(&report, "qty"), ColumnKind::Decimal);
    assert!(report.html.contains("1.502,50"), "1500 + 2.5 with a decimal comma");
}

#[test]
fn things_that_only_look_scientific_stay_text() {
    for cell in ["1e", "e5", "v1.2e3", "1.2.3e4", "12e4567", "1e5.0"] {
        let data = format!("id,val\n1,{cell}\n2,3\n");
        let report = render("text.csv", data.as_bytes()).unwrap();
        assert_eq!(kind(&report, "val"), ColumnKind::Text, "{cell:?}");
    }
}

/// The count, sum, minimum, maximum, mean and median of `column` as the HTML report shows them.
pub fn numeric_stats(html: &str, column: &str) -> Vec<String> {
    let start = html
        .find(&format!(r#"<tr><td>{column}</td><td class="num">"#))
        .unwrap_or_else(|| panic!("no statistics row for {column}"));
    let row = &html[start..];
    let row = &row[..row.find("</tr>").unwrap()];
    row.split("<td class=\"num")
        .skip(1)
        .map(|cell| cell.split('>').nth(1).unwrap().split('<').next().unwrap().to_owned())
        .collect()
}

#[test]
fn values_with_many_decimals_are_shown_with_all_of_them() {
    let report = render("crypto.csv", b"tx,btc\na,0.00000001\nb,0.00000002\nc,0.00000004\n").unwrap();
    assert_eq!(
        numeric_stats(&report.html, "btc"),
        ["3", "0.00000007", "0.00000001", "0.00000004", "0.00000002", "0.00000002"]
    );
    assert!(report.html.contains(">0.00000004</text>"), "the bar's value: {}", report.html);

    let report = render("sci.csv", b"k,v\na,5.2e-05\nb,1.0e-07\nc,3e-8\n").unwrap();
    assert_eq!(
        numeric_stats(&report.html, "v"),
        ["3", "0.00005213", "0.00000003", "0.00005200", "0.00001738", "0.00000010"]
    );

    // As many decimals as the values have, up to the 28 a decimal holds.
    let report = render("tiny.csv", b"k,v\na,1.5e-27\nb,0.1\n").unwrap();
    assert_eq!(numeric_stats(&report.html, "v")[1], "0.1000000000000000000000000015");
}

#[test]
fn a_mean_that_is_not_zero_never_shows_as_zero() {
    let report = render("mean.csv", b"k,v\na,0.01\nb,-0.01\nc,0.01\n").unwrap();
    assert_eq!(numeric_stats(&report.html, "v")[4], "0.00333");
    let data: String = std::iter::once("n\n1\n".to_owned()).chain((0..999).map(|_| "0\n".to_owned())).collect();
    let report = render("mean.csv", data.as_bytes()).unwrap();
    assert_eq!(numeric_stats(&report.html, "n")[4], "0.00100");
    // An ordinary mean keeps the column's decimals.
    let report = render("mean.csv", b"k,v\na,1.25\nb,2\nc,3\n").unwrap();
    assert_eq!(numeric_stats(&report.html, "v")[4], "2.08");
}

#[test]
fn json_numbers_are_read_exactly_as_written() {
    let data = br#"[{"id":1,"big":12345678901234567890123,"small":0.1,"price":19.90,"one":1.0},
                    {"id":2,"big":98765432109876543210,"small":0.2,"price":5,"one":2.0},
                    {"id":3,"big":1,"small":0.30000000000000004,"price":0.10,"one":3.0}]"#;
    let report = render("exact.json", data).unwrap();
    assert_eq!(kind(&report, "big"), ColumnKind::Integer);
    assert_eq!(
        numeric_stats(&report.html, "big")[..4],
        ["3", "12,444,444,333,344,444,433,334", "1", "12,345,678,901,234,567,890,123"]
    );
    assert_eq!(numeric_stats(&report.html, "small")[1], "0.60000000000000004");
    assert_eq!(numeric_stats(&report.html, "price")[1..4], ["25.00", "0.10", "19.90"]);
    assert!(report.html.contains("<td class=\"num\">19.90</td>"), "the preview shows 19.90 as written");
    assert_eq!(kind(&report, "one"), ColumnKind::Decimal, "1.0 is written as a decimal");

    // A number no decimal holds is kept as written, as text, never rounded.
    let report = render("huge.json", br#"[{"n":123456789012345678901234567890123},{"n":1e400}]"#).unwrap();
    assert_eq!(kind(&report, "n"), ColumnKind::Text);
    assert!(report.html.contains("123456789012345678901234567890123") && report.html.contains("1e400"));

    // JSON writes numbers with a point whatever the configured locale, and the report shows them so.
    let settings = ReportSettings { locale: Locale::Comma, ..ReportSettings::default() };
    let report = render_with("comma.json", br#"[{"p":19.90},{"p":1.234}]"#, &settings).unwrap();
    assert_eq!(kind(&report, "p"), ColumnKind::Decimal);
    assert_eq!(numeric_stats(&report.html, "p")[1], "21.134", "in the file's own style");
}
