//! Malformed and hostile inputs: every rejection has its code and names its line or its limit.

use sluice_report::{Locale, ReportSettings, TabularKind};

use crate::support::{error, render_as, render_with};

fn check(data: &str, code: &str, message_part: &str) {
    let error = error("bad.csv", data.as_bytes());
    assert_eq!(error.code(), code, "{error}");
    assert!(error.to_string().contains(message_part), "{error:?} lacks {message_part:?}");
    assert!(error.is_permanent());
}

#[test]
fn empty_files_are_rejected() {
    check("", "empty_file", "empty");
    check("\u{feff}\n\n  \n", "empty_file", "empty");
    check("a,b,c\n", "empty_file", "header but no data rows");
    check("a,b,c\n\n\r\n\n", "empty_file", "header but no data rows");
}

#[test]
fn ragged_rows_name_their_line_even_after_quoted_newlines() {
    check("a,b,c\n1,2,3\n4,5\n", "ragged_row", "line 3 has 2 cells where the header has 3");
    check("a,b,c\n1,\"two\nlines\",3\n4,5,6,7\n", "ragged_row", "line 4 has 4 cells");
}

#[test]
fn unbalanced_quotes_name_the_opening_line() {
    check("a,b\n1,2\n3,\"open\n4,5\n6,7\n", "unbalanced_quote", "opened on line 3");
    check("a,b\n1,2\n3,\"open\n", "unbalanced_quote", "opened on line 3");
}

#[test]
fn invalid_utf8_names_its_line() {
    let mut latin1 = b"nome;cidade\nJos\xe9;S\xe3o Paulo\n".to_vec();
    latin1.extend_from_slice(b"Ana;Rio\n");
    let latin = error("latin1.csv", &latin1);
    assert_eq!(latin.code(), "invalid_utf8");
    assert!(latin.to_string().contains("line 2"), "{latin}");
    let utf16 = error("u16.csv", b"\xFF\xFEa\0,\0b\0");
    assert_eq!(utf16.code(), "invalid_utf8");
    assert!(utf16.to_string().contains("UTF-16"));
}

#[test]
fn limits_are_enforced_and_named() {
    let settings = ReportSettings { max_rows: 3, max_columns: 3, max_cell_bytes: 10, ..ReportSettings::default() };
    let cases: [(&str, &str, &str); 4] = [
        ("a,b\n1,2\n3,4\n5,6\n7,8\n", "too_many_rows", "reports.max_rows"),
        ("a,b,c,d\n1,2,3,4\n", "too_many_columns", "reports.max_columns"),
        (
            "a,b\n1,2\n3,12345678901\n",
            "cell_too_large",
            "line 3 has a cell larger than 10 bytes, the limit set by reports.max_cell_bytes",
        ),
        ("a,b\n1,\"12345\n678901\"\n", "cell_too_large", "line 2"),
    ];
    for (data, code, part) in cases {
        let error = render_with("limits.csv", data.as_bytes(), &settings).unwrap_err();
        assert_eq!(error.code(), code, "{error}");
        assert!(error.to_string().contains(part), "{error} lacks {part:?}");
    }
    // Exactly at the limits is fine.
    render_with("ok.csv", b"a,b,c\n1,2,3\n4,5,6\n7,8,9\n", &settings).unwrap();
    // A huge cell is stopped before it is buffered (bounded memory), with the line it starts on.
    let mut huge = b"a,b\n1,2\n3,\"".to_vec();
    huge.extend(std::iter::repeat_n(b'x', 5_000_000));
    huge.extend_from_slice(b"\"\n");
    let error = render_with("huge.csv", &huge, &ReportSettings::default()).unwrap_err();
    assert_eq!(error.code(), "cell_too_large");
    assert!(error.to_string().contains("line 3"), "{error}");
}

#[test]
fn too_many_columns_says_how_many_a_line_has() {
    for width in [201, 409, 1000, 5000] {
        let header: Vec<String> = (0..width).map(|i| format!("c{i}")).collect();
        let data: Vec<String> = (0..width).map(|i| i.to_string()).collect();
        let csv = format!("{}\n{}\n", header.join(","), data.join(","));
        let expected = format!("line 1 has {width} columns, more than the limit of 200 set by reports.max_columns");
        check(&csv, "too_many_columns", &expected);
    }
    // A data row far wider than the header is counted too, on the line it starts on.
    let wide: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
    check(&format!("a,b\n1,2\n{}\n3,4\n", wide.join(",")), "too_many_columns", "line 3 has 1000 columns");
}

#[test]
fn too_many_json_keys_say_what_passed_the_limit() {
    let members: Vec<String> = (0..5000).map(|i| format!("\"k{i}\":{i}")).collect();
    let wide = error("wide.json", format!("[{{{}}}]", members.join(",")).as_bytes());
    assert_eq!(wide.code(), "too_many_columns");
    assert!(wide.to_string().contains("object 1 of the JSON array has 5000 keys"), "{wide}");
    assert_eq!(wide.line(), None);

    let objects: Vec<String> = (0..300).map(|i| format!("{{\"k{i}\":{i}}}")).collect();
    let union = error("union.json", format!("[{{\"a\":1}},{}]", objects.join(",")).as_bytes());
    assert_eq!(union.code(), "too_many_columns");
    assert!(union.to_string().contains("the first 201 objects of the JSON array have 201 distinct keys"), "{union}");
    assert!(!union.to_string().contains("line"), "{union}");
    assert_eq!(union.line(), None);
}

#[test]
fn json_that_is_not_a_table_is_rejected() {
    let cases: [(&str, &str); 5] = [
        (r#"{"a": 1}"#, "not_tabular"),
        (r#"[{"a": {"b": 1}}]"#, "not_tabular"),
        (r#"[{"a": 1}, {"a": 2"#, "invalid_json"),
        (r#"[]"#, "empty_file"),
        (r#"[{"a": 1}] trailing"#, "invalid_json"),
    ];
    for (data, code) in cases {
        let error = error("data.json", data.as_bytes());
        assert_eq!(error.code(), code, "{data}: {error}");
    }
}

#[test]
fn a_configured_locale_wins_over_detection() {
    let settings = ReportSettings { locale: Locale::Comma, ..ReportSettings::default() };
    let report = render_with("x.csv", b"item,price\na,\"1,5\"\nb,\"2,25\"\n", &settings).unwrap();
    assert!(report.html.contains("3,75"), "sum in comma locale");
}

#[test]
fn ambiguous_numbers_follow_the_delimiter() {
    let report = render_with("x.csv", b"item;qty\na;1.234\nb;2.000\n", &ReportSettings::default()).unwrap();
    assert_eq!(report.summary.locale, Locale::Comma, "`;` without votes reads a decimal comma");
    assert!(report.html.contains("3.234"), "1.234 + 2.000 as thousands");
    let report = render_with("x.csv", b"item,qty\na,\"1,234\"\nb,7\n", &ReportSettings::default()).unwrap();
    assert_eq!(report.summary.locale, Locale::Dot);
    assert!(report.html.contains("1,241"));
}

#[test]
fn line_numbers_count_crlf_lone_cr_and_blank_lines() {
    check("a,b\r\n1,2\r\n3,4\r\n5,6\r\n7,8\r\n9\r\n", "ragged_row", "line 6 has 1 cells");
    check("a,b\n1,2\n\n3\n", "ragged_row", "line 4 has 1 cells");
    check("a,b\r\n\r\n1,2\r\n\r\n\r\n3\r\n", "ragged_row", "line 6 has 1 cells");
    check("a,b\r1,2\r\r3\r", "ragged_row", "line 4 has 1 cells");
    check("a,b\n1,\"x\r\ny\rz\",3\n4\n", "ragged_row", "line 2 has 3 cells");
    check("a,b\n1,\"x\r\ny\rz\"\n4\n", "ragged_row", "line 5 has 1 cells");
    check("a,b\r1,2\r\r3,\"open\r4,5\r", "unbalanced_quote", "opened on line 4");
    let settings = ReportSettings { max_cell_bytes: 10, max_columns: 3, ..ReportSettings::default() };
    let error = render_with("cr.csv", b"a,b\r1,2\r\r\n3,12345678901\r", &settings).unwrap_err();
    assert!(error.to_string().contains("line 4 has a cell larger"), "{error}");
    let error = render_with("cr.csv", b"a,b\r1,2\r\n\r\n1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\r", &settings).unwrap_err();
    assert!(error.to_string().contains("line 4 has 15 columns"), "{error}");
}

#[test]
fn invalid_utf8_names_the_line_of_the_bad_byte() {
    let cases: [(&[u8], &str); 4] = [
        (b"a,b\r\n1,x\r\n2,y\r\n3,z\r\n4,caf\xe9\r\n5,w\r\n", "line 5 "),
        (b"date,region\r\n2025-01-01,S\xfcd\r\n", "line 2 "),
        (b"a,b\r\n\r\n1,\"x\ny\r\nz\xe9\"\r\n", "line 5 "),
        (b"a\xe9,b\n1,2\n", "line 1 "),
    ];
    for (data, line) in cases {
        let error = error("latin1.csv", data);
        assert_eq!(error.code(), "invalid_utf8");
        assert!(error.to_string().contains(line), "{error} lacks {line:?}");
    }
}

#[test]
fn the_recorded_format_decides_and_the_bytes_only_when_nothing_is_known() {
    let settings = ReportSettings::default();
    let bracketed = b"[id],[name]\n1,x\n2,y\n";
    let report = render_as("bracket_header", Some(TabularKind::Csv), bracketed, &settings).unwrap();
    let names: Vec<&str> = report.summary.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["[id]", "[name]"]);
    assert_eq!(report.summary.rows, 2);
    // Recorded as JSON, or unknown and starting with `[`: read as JSON.
    let json = br#"[{"id": 1}]"#;
    assert_eq!(render_as("rows.csv", Some(TabularKind::Json), json, &settings).unwrap().summary.rows, 1);
    assert_eq!(render_as("rows", None, json, &settings).unwrap().summary.rows, 1);
    assert_eq!(render_as("bracket_header", None, bracketed, &settings).unwrap_err().code(), "invalid_json");
    // With nothing recorded, the extension decides.
    assert_eq!(render_as("bracket.csv", None, bracketed, &settings).unwrap().summary.rows, 2);
}

#[test]
fn a_spreadsheet_workbook_is_named_as_one() {
    let mut xlsx = b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00".to_vec();
    xlsx.extend_from_slice(b"[Content_Types].xml\x00\x00\xad\x92\x00PK\x03\x04xl/workbook.xml\x00\x01");
    let mut ods = b"PK\x03\x04\x14\x00\x00\x08\x00\x00mimetype".to_vec();
    ods.extend_from_slice(b"application/vnd.oasis.opendocument.spreadsheetPK\x03\x04");
    let cases: [(&[u8], &str); 4] = [
        (&xlsx, "an Excel workbook (.xlsx)"),
        (&ods, "an OpenDocument spreadsheet (.ods)"),
        (b"PK\x03\x04\x0a\x00\x00\x00\x00\x00notes.txt", "a ZIP archive"),
        (b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1\x00\x00\x00\x00", "an Excel 97-2003 workbook (.xls)"),
    ];
    for (data, named) in cases {
        let error = error("sales.csv", data);
        assert_eq!(error.code(), "not_tabular", "{error}");
        let message = error.to_string();
        assert!(message.contains(named) && message.contains("export it as CSV"), "{message}");
        assert!(!message.contains("UTF-8 text"), "{message}");
    }
}
