//! Every record is a row: records whose cells are all empty are counted, blank lines are not.

use sluice_report::{ColumnKind, ReportSettings};

use crate::support::{render, render_with};

/// The Filled and Empty counts of `column` in the HTML's column overview.
fn counts(html: &str, column: &str) -> (u64, u64) {
    let start = html.find(&format!("<tr><td>{column}</td>")).unwrap_or_else(|| panic!("no overview row for {column}"));
    let row = &html[start..];
    let row = &row[..row.find("</tr>").unwrap()];
    let cells: Vec<u64> = row
        .split(r#"<td class="num">"#)
        .skip(1)
        .map(|cell| cell.split('<').next().unwrap().replace(',', "").parse().unwrap())
        .collect();
    assert_eq!(cells.len(), 2, "{row}");
    (cells[0], cells[1])
}

#[test]
fn json_objects_whose_values_are_all_null_are_rows() {
    let report = render("nulls.json", br#"[{"a":null},{"a":true}]"#).unwrap();
    assert_eq!(report.summary.rows, 2);
    assert_eq!(report.summary.columns[0].filled, 1);
    assert_eq!(counts(&report.html, "a"), (1, 1));

    let data = br#"[{"a":null,"b":null},{"a":1,"b":2},{"a":3,"b":null}]"#;
    let report = render("nulls.json", data).unwrap();
    assert_eq!(report.summary.rows, 3);
    assert_eq!(report.summary.columns[0].kind, ColumnKind::Integer);
    assert_eq!(counts(&report.html, "a"), (2, 1));
    assert_eq!(counts(&report.html, "b"), (1, 2));
    assert!(report.html.contains("All 3 rows."));
}

#[test]
fn csv_records_of_empty_cells_are_rows_and_blank_lines_are_not() {
    let report = render("empty.csv", b"a,b\n,\n1,2\n").unwrap();
    assert_eq!(report.summary.rows, 2);
    assert_eq!(counts(&report.html, "a"), (1, 1));
    assert_eq!(counts(&report.html, "b"), (1, 1));

    // Blank lines (LF or CRLF, between records or at the end) are skipped; quoted empty cells and a trailing
    // delimiter still make a record.
    let report = render("blank.csv", b"a,b\r\n\r\n,\r\n\r\n1,2\r\n\"\",\"\",\r\n\r\n\n").unwrap();
    assert_eq!(report.summary.rows, 3);
    assert_eq!(counts(&report.html, "a"), (1, 2));

    // A file whose only data record is empty has a data row.
    let report = render("only.csv", b"a;b\n;\n").unwrap();
    assert_eq!(report.summary.rows, 1);
    assert_eq!(counts(&report.html, "b"), (0, 1));
}

#[test]
fn empty_records_count_towards_max_rows_and_blank_lines_do_not() {
    let settings = ReportSettings { max_rows: 2, ..ReportSettings::default() };
    let error = render_with("rows.csv", b"a,b\n,\n1,2\n,\n", &settings).unwrap_err();
    assert_eq!(error.code(), "too_many_rows", "{error}");
    let error = render_with("rows.json", br#"[{"a":null},{"a":1},{"a":null}]"#, &settings).unwrap_err();
    assert_eq!(error.code(), "too_many_rows", "{error}");
    let report = render_with("rows.csv", b"a,b\n\n,\n\n\n1,2\n\n", &settings).unwrap();
    assert_eq!(report.summary.rows, 2);
}

#[test]
fn a_json_key_first_seen_late_is_a_column_empty_before_it() {
    let mut data = String::from("[");
    for i in 0..1500 {
        match i {
            1200 => data.push_str(r#"{"a": 1200, "b": "x", "late": "surprise"},"#),
            1300 => data.push_str(r#"{"b": "y", "n": 2.5, "a": 1300},"#),
            _ => data.push_str(&format!(r#"{{"a": {i}, "b": "x"}},"#)),
        }
    }
    data.push_str(r#"{"a": 0, "n": 0.25}]"#);
    let report = render("late.json", data.as_bytes()).unwrap();
    assert_eq!(report.summary.rows, 1501);
    let names: Vec<&str> = report.summary.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "late", "n"]);
    assert_eq!(report.summary.columns[3].kind, ColumnKind::Decimal);
    assert_eq!(counts(&report.html, "late"), (1, 1500));
    assert_eq!(counts(&report.html, "n"), (2, 1499));
    assert_eq!(counts(&report.html, "b"), (1500, 1));
    assert!(report.html.contains("<td>surprise</td>"), "late values are counted");
    assert!(report.html.contains(r#"<td class="num strong">2.75</td>"#), "the sum of n");
    // The preview keeps its columns in line.
    assert!(report.html.contains(
        r#"<tr><td class="num muted">1</td><td class="num">0</td><td>x</td><td></td><td class="num"></td></tr>"#
    ));

    // The column limit still holds, for keys first seen late too.
    let settings = ReportSettings { max_columns: 3, ..ReportSettings::default() };
    let error = render_with("late.json", data.as_bytes(), &settings).unwrap_err();
    assert_eq!(error.code(), "too_many_columns");
    assert!(error.to_string().contains("the first 1301 objects of the JSON array have 4 distinct keys"), "{error}");
}

fn names(report: &sluice_report::Report) -> Vec<&str> {
    report.summary.columns.iter().map(|c| c.name.as_str()).collect()
}

#[test]
fn a_trailing_delimiter_on_the_header_or_on_every_line_adds_no_column() {
    let report = render("trail_header.csv", b"a,b,\n1,2\n3,4\n").unwrap();
    assert_eq!(names(&report), ["a", "b"]);
    assert_eq!(report.summary.rows, 2);
    assert!(report.html.contains(r#"<td class="num strong">6</td>"#), "the sum of b");

    let report = render("trail_both.csv", b"a;b;\r\n1;2,5;\r\n3;4,5;\r\n").unwrap();
    assert_eq!(names(&report), ["a", "b"]);
    assert_eq!(report.summary.columns[1].kind, ColumnKind::Decimal);
    assert!(report.html.contains(r#"<td class="num strong">7,00</td>"#), "the sum of b");
    assert!(!report.html.contains("Column 3"));

    // Several trailing delimiters, spaces in the unnamed cells, rows with and without them.
    let report = render("trail_more.csv", b"a,b,,\n1,2, ,\n3,4\n5,6,\n").unwrap();
    assert_eq!(names(&report), ["a", "b"]);
    assert_eq!(report.summary.rows, 3);
}

#[test]
fn an_unnamed_column_that_holds_something_stays() {
    let report = render("trail_data.csv", b"a,b,\n1,2,x\n3,4\n").unwrap();
    assert_eq!(names(&report), ["a", "b", "Column 3"]);
    assert_eq!(counts(&report.html, "Column 3"), (1, 1));
    let report = render("inner.csv", b"a,,c\n1,,3\n").unwrap();
    assert_eq!(names(&report), ["a", "Column 2", "c"], "only a trailing unnamed column goes");
    // A named column is required in every row; JSON keys are kept as they are.
    let error = render("named.csv", b"a,b,c\n1,2\n").unwrap_err();
    assert_eq!(error.code(), "ragged_row");
    let report = render("blank_key.json", br#"[{"a":1,"":null}]"#).unwrap();
    assert_eq!(names(&report), ["a", "Column 2"]);
}

#[test]
fn missing_value_markers_count_as_empty_in_numeric_and_date_columns() {
    let mut data = String::from("id,amount,when,region\n");
    for i in 0..1000 {
        match i {
            500 => data.push_str("500, N/A ,#N/A,NA\n"),
            501 => data.push_str("501,nan,null,-\n"),
            502 => data.push_str("502,—,NULL,n/a\n"),
            _ => data.push_str(&format!("{i},{}.5,2025-01-{:02},{}\n", i % 7, i % 28 + 1, ["North", "South"][i % 2])),
        }
    }
    let report = render("one_na.csv", data.as_bytes()).unwrap();
    let kinds: Vec<ColumnKind> = report.summary.columns.iter().map(|c| c.kind).collect();
    assert_eq!(kinds, [ColumnKind::Integer, ColumnKind::Decimal, ColumnKind::Date, ColumnKind::Text]);
    assert_eq!(counts(&report.html, "amount"), (997, 3));
    assert_eq!(report.summary.columns[1].filled, 997);
    assert_eq!(counts(&report.html, "when"), (997, 3));
    // In a text column a marker is a value like any other (`NA` may be North America).
    assert_eq!(counts(&report.html, "region"), (1000, 0));
    assert_eq!(report.summary.columns[3].filled, 1000);
    assert!(report.html.contains("<td>NA</td>"), "counted among the region's values");
    assert!(report.html.contains("amount by region"), "the numeric column is still charted");

    // A column of markers alone is text; other words are not markers.
    let report = render("markers.csv", b"a,b\nN/A,none\n-,1\n").unwrap();
    assert_eq!(report.summary.columns[0].kind, ColumnKind::Text);
    assert_eq!(report.summary.columns[1].kind, ColumnKind::Text);
}
