//! CSV, TSV and JSON uploads rendered into PDF and HTML reports, checked by parsing what comes back: the PDF
//! with poppler's `pdfinfo` and `pdftotext`, the HTML as text.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::helpers::{Options, code, files_under, sample, spawn_app, spawn_with};

/// Sums a money column written with a decimal separator and optional thousands separators, in cents, without
/// floating point: the test's own arithmetic, independent of the server's.
fn column_cents(csv: &str, delimiter: char, column: usize) -> i64 {
    csv.trim_start_matches('\u{feff}')
        .lines()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let cell = line.split(delimiter).nth(column).unwrap();
            cell.chars().filter(char::is_ascii_digit).collect::<String>().parse::<i64>().unwrap()
        })
        .sum()
}

/// Formats cents as `1.234.567,89` (comma locale) or `1,234,567.89` (dot locale).
fn format_cents(cents: i64, group: char, decimal: char) -> String {
    let units = (cents / 100).to_string();
    let mut grouped = String::new();
    for (i, digit) in units.chars().enumerate() {
        if i > 0 && (units.len() - i).is_multiple_of(3) {
            grouped.push(group);
        }
        grouped.push(digit);
    }
    format!("{grouped}{decimal}{:02}", cents % 100)
}

/// Runs a poppler tool on a PDF and returns its standard output.
fn poppler(tool: &str, args: &[&str], pdf: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.pdf");
    std::fs::write(&path, pdf).unwrap();
    let output = Command::new(tool)
        .args(args)
        .arg(&path)
        .args(if tool == "pdftotext" { vec!["-"] } else { vec![] })
        .output()
        .unwrap_or_else(|error| panic!("{tool} is needed for this test (Debian: poppler-utils): {error}"));
    assert!(output.status.success(), "{tool} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// The page count `pdfinfo` reads.
fn page_count(pdf: &[u8]) -> u32 {
    let info = poppler("pdfinfo", &[], pdf);
    let line = info.lines().find(|line| line.starts_with("Pages:")).expect("pdfinfo prints Pages:");
    line.trim_start_matches("Pages:").trim().parse().unwrap()
}

/// Uploads one file given as bytes, waits for the job to finish, and returns its document.
async fn report_job(app: &crate::helpers::TestApp, name: &str, bytes: Vec<u8>, mime: Option<&str>) -> Value {
    let response = app.upload_parts(vec![(name, bytes, mime)]).await;
    assert_eq!(response.status(), 202);
    let accepted: Value = response.json().await.unwrap();
    assert_eq!(accepted["files"][0]["content_type"], mime_of(name), "{accepted:#}");
    let id = accepted["id"].as_str().unwrap().to_owned();
    app.wait_settled(&id).await
}

fn mime_of(name: &str) -> &'static str {
    if name.ends_with(".json") { "application/json" } else { "text/csv" }
}

/// The PDF and HTML outputs of the job's first file, downloaded.
async fn outputs(app: &crate::helpers::TestApp, document: &Value) -> (Vec<u8>, String) {
    let file = &document["files"][0];
    assert_eq!(file["state"], "converted", "{document:#}");
    let outputs = file["outputs"].as_array().unwrap();
    assert_eq!(outputs.len(), 2, "{document:#}");
    let mut pdf = None;
    let mut html = None;
    for output in outputs {
        assert!(output.get("width").is_none(), "reports have no pixel size: {output}");
        let url = output["url"].as_str().unwrap();
        let response = app.client.get(app.url(url)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let declared = response.headers()["content-type"].to_str().unwrap().to_owned();
        assert_eq!(output["content_type"].as_str().unwrap(), declared);
        let body = response.bytes().await.unwrap().to_vec();
        if declared == "application/pdf" {
            assert!(url.ends_with(".pdf") && url.contains("/reports/"), "{url}");
            pdf = Some(body);
        } else {
            assert!(declared.starts_with("text/html"), "{declared}");
            html = Some(String::from_utf8(body).unwrap());
        }
    }
    (pdf.expect("a PDF output"), html.expect("an HTML output"))
}

#[tokio::test]
async fn a_brazilian_csv_becomes_a_pdf_and_an_html_report_with_exact_totals() {
    let app = spawn_app().await;
    let csv = std::fs::read_to_string(sample("vendas.csv")).unwrap();
    let total = format_cents(column_cents(&csv, ';', 6), '.', ',');
    assert_eq!(total, "314.725,18", "the sample's own total, summed by the test");

    let response = app.upload(&["vendas.csv"], &[("notify", "ana@example.com")]).await;
    assert_eq!(response.status(), 202);
    let accepted: Value = response.json().await.unwrap();
    let document = app.wait_settled(accepted["id"].as_str().unwrap()).await;
    assert_eq!(document["state"], "completed", "{document:#}");
    let (pdf, html) = outputs(&app, &document).await;

    assert!(pdf.starts_with(b"%PDF-"));
    assert!(page_count(&pdf) >= 1);
    let text = poppler("pdftotext", &["-layout"], &pdf);
    assert!(text.contains("vendas"), "the title comes from the file name");
    assert!(text.contains(&total), "the PDF shows the exact total {total}:\n{text}");
    assert!(text.contains("150"), "the row count");
    assert!(html.contains(&total), "the HTML shows the exact total {total}");
    assert!(html.contains("Centro-Oeste") && html.contains("Cláudio Simões"), "UTF-8 text survives");
    assert!(!html.contains("<script"), "the report page runs no script");

    // The notice links both renderings.
    let outbox = app.outbox();
    let mails = files_under(&outbox);
    assert_eq!(mails.len(), 1, "{mails:?}");
    // Undo quoted-printable's soft line breaks so that links read whole.
    let mail = std::fs::read_to_string(outbox.join(&mails[0])).unwrap().replace("=\r\n", "").replace("=\n", "");
    let id = document["id"].as_str().unwrap();
    assert!(mail.contains(&format!("reports/{id}/0.pdf")), "{mail}");
    assert!(mail.contains(&format!("reports/{id}/0.html")), "{mail}");
    app.stop().await;
}

#[tokio::test]
async fn a_comma_csv_a_tsv_and_a_json_table_all_report() {
    let app = spawn_app().await;
    let csv = std::fs::read_to_string(sample("sales.csv")).unwrap();
    let total = format_cents(column_cents(&csv, ',', 5), ',', '.');
    let document = report_job(&app, "sales.csv", csv.clone().into_bytes(), None).await;
    let (pdf, html) = outputs(&app, &document).await;
    assert!(poppler("pdftotext", &["-layout"], &pdf).contains(&total), "PDF total {total}");
    assert!(html.contains(&total), "HTML total {total}");

    let tsv = csv.replace(',', "\t");
    let document = report_job(&app, "sales.tsv", tsv.into_bytes(), None).await;
    let (_, html) = outputs(&app, &document).await;
    assert!(html.contains(&total), "the TSV gives the same total");

    let json = br#"[{"city": "Lisboa", "amount": 0.1}, {"city": "Porto", "amount": 0.2}]"#.to_vec();
    let document = report_job(&app, "amounts.json", json, Some("application/json")).await;
    let (pdf, html) = outputs(&app, &document).await;
    assert!(html.contains("0.30"), "0.1 + 0.2 is exactly 0.30");
    assert!(poppler("pdftotext", &[], &pdf).contains("0.30"));
    app.stop().await;
}

#[tokio::test]
async fn script_and_formulas_in_cells_are_shown_as_text() {
    let app = spawn_app().await;
    let hostile = "name,amount\n\
        \"<script>alert(1)</script>\",1\n\
        \"<img src=x onerror=alert(2)>\",2\n\
        \"=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\",3\n\
        \"</style><iframe src=//evil.example>\",4\n";
    let document = report_job(&app, "hostile.csv", hostile.as_bytes().to_vec(), None).await;
    let (pdf, html) = outputs(&app, &document).await;
    for raw in ["<script>alert(1)", "<img src=x", "<iframe", "</style><"] {
        assert!(!html.contains(raw), "{raw} must be escaped");
    }
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"), "nothing external is loaded");
    let text = poppler("pdftotext", &[], &pdf);
    assert!(text.contains("<script>alert(1)</script>"), "the PDF prints the cell as text:\n{text}");
    // The page forbids scripts even if something slipped through.
    let response = app.client.get(app.url(document["files"][0]["outputs"][1]["url"].as_str().unwrap())).send().await;
    let headers = response.unwrap().headers().clone();
    assert!(headers.contains_key("content-security-policy"));
    app.stop().await;
}

#[tokio::test]
async fn broken_tables_are_rejected_with_the_line_and_nothing_is_written() {
    let app = spawn_app().await;
    let cases: [(&str, &[u8], &str, &str); 4] = [
        ("ragged.csv", b"a,b,c\n1,2,3\n4,5\n", "ragged_row", "line 3"),
        ("quote.csv", b"a,b\n1,\"open\n2,3\n", "unbalanced_quote", "line 2"),
        ("latin1.csv", b"a,b\n1,caf\xe9\n", "invalid_utf8", "line 2"),
        ("header-only.csv", b"a,b,c\n", "empty_file", "no data rows"),
    ];
    for (name, bytes, expected, mentions) in cases {
        let document = report_job(&app, name, bytes.to_vec(), None).await;
        let file = &document["files"][0];
        assert_eq!(file["state"], "rejected", "{name}: {document:#}");
        assert_eq!(file["error"]["code"], expected, "{name}: {document:#}");
        let message = file["error"]["message"].as_str().unwrap();
        assert!(message.contains(mentions), "{name}: {message}");
        assert_eq!(file["outputs"].as_array().unwrap().len(), 0);
        let id = document["id"].as_str().unwrap();
        assert!(!app.storage().join("reports").join(id).exists(), "{name}: no half-written report");
    }
    app.stop().await;
}

#[tokio::test]
async fn the_configured_limits_reject_big_tables() {
    let app = spawn_with(Options {
        tweak: Some(Box::new(|settings| {
            settings.reports.max_rows = 5;
            settings.reports.max_columns = 3;
        })),
        ..Options::default()
    })
    .await;
    let rows: String = (0..6).map(|i| format!("{i},{i}\n")).collect();
    let document = report_job(&app, "rows.csv", format!("a,b\n{rows}").into_bytes(), None).await;
    assert_eq!(document["files"][0]["error"]["code"], "too_many_rows", "{document:#}");
    assert!(document["files"][0]["error"]["message"].as_str().unwrap().contains("reports.max_rows"));

    let document = report_job(&app, "wide.csv", b"a,b,c,d\n1,2,3,4\n".to_vec(), None).await;
    assert_eq!(document["files"][0]["error"]["code"], "too_many_columns", "{document:#}");
    app.stop().await;
}

#[tokio::test]
async fn only_tables_named_or_declared_as_such_are_reports() {
    let app = spawn_app().await;
    // CSV text named as an image is a lie, never read as a table.
    let response = app.upload_parts(vec![("photo.jpg", b"a,b\n1,2\n".to_vec(), None)]).await;
    assert_eq!(response.status(), 415);
    let body: Value = response.json().await.unwrap();
    assert_eq!(code(&body), "unsupported_media_type");
    assert!(body["error"]["message"].as_str().unwrap().contains("named or declared as an image"), "{body}");
    // Plain text without a table's name or type is not converted.
    let response = app.upload_parts(vec![("notes.txt", b"a,b\n1,2\n".to_vec(), Some("text/plain"))]).await;
    assert_eq!(response.status(), 415);
    // Declared as CSV without the name: a report.
    let document = report_job(&app, "export", b"a,b\n1,2\n".to_vec(), Some("text/csv")).await;
    assert_eq!(document["files"][0]["state"], "converted", "{document:#}");
    // An image and a table in one upload: both converted.
    let photo = first_sample_photo();
    let response =
        app.upload_parts(vec![("photo.jpg", photo, None), ("table.csv", b"a,b\n1,2\n".to_vec(), None)]).await;
    assert_eq!(response.status(), 202);
    let accepted: Value = response.json().await.unwrap();
    let document = app
        .wait_for(accepted["id"].as_str().unwrap(), Duration::from_secs(90), |doc| doc["state"] == "completed")
        .await;
    assert_eq!(document["files"][0]["state"], "converted", "{document:#}");
    assert_eq!(document["files"][1]["state"], "converted", "{document:#}");
    assert_eq!(document["files"][1]["outputs"][0]["content_type"], "application/pdf");
    app.stop().await;
}

/// The bytes of some JPEG among the samples.
fn first_sample_photo() -> Vec<u8> {
    let dir = sample("");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext.eq_ignore_ascii_case("jpg")))
        .collect();
    names.sort();
    std::fs::read(names.first().expect("a JPEG sample")).unwrap()
}
