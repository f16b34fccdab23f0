//! Numbers in scientific notation are decimals in CSV and TSV as they are in JSON.

use sluice_report::{ColumnKind, Locale};

use crate::support::render;

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
