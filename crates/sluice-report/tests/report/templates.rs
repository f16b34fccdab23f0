//! User templates: loaded from a folder, falling back to the embedded defaults, checked, and used.

use sluice_report::{ReportInput, ReportSettings, Templates, render_report};
use time::macros::datetime;

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sluice-report-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_custom_layout_is_used_and_the_typst_default_fills_in() {
    let dir = temp_dir("custom");
    std::fs::write(dir.join("report.html"), "<h1>{{ title }}</h1><p>{{rows}} rows</p>{{numeric}}").unwrap();
    let templates = Templates::load(Some(&dir)).unwrap();
    let input = ReportInput {
        title: "Q1 <sales>",
        source_name: "q1.csv",
        kind: None,
        generated_at: datetime!(2025-01-01 0:00 UTC),
        data: b"a,b\nx,1\ny,2\n",
    };
    let report = render_report(&input, &ReportSettings::default(), &templates).unwrap();
    assert!(report.html.starts_with("<h1>Q1 &lt;sales&gt;</h1><p>2 rows</p><table"), "{}", report.html);
    assert!(report.pdf.starts_with(b"%PDF-"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_templates_are_reported() {
    let dir = temp_dir("bad");
    std::fs::write(dir.join("report.html"), "{{titel}}").unwrap();
    let error = Templates::load(Some(&dir)).unwrap_err();
    assert_eq!(error.code(), "template_invalid");
    assert!(error.to_string().contains("unknown slot {{titel}}"), "{error}");
    std::fs::write(dir.join("report.html"), "{{title}}").unwrap();
    std::fs::write(dir.join("report.typ"), "#let x = (").unwrap();
    let templates = Templates::load(Some(&dir)).unwrap();
    let input = ReportInput {
        title: "t",
        source_name: "t.csv",
        kind: None,
        generated_at: datetime!(2025-01-01 0:00 UTC),
        data: b"a\n1\n",
    };
    let error = render_report(&input, &ReportSettings::default(), &templates).unwrap_err();
    assert_eq!(error.code(), "render_failed");
    assert!(!error.is_permanent());
    std::fs::remove_dir_all(&dir).unwrap();
    let missing = Templates::load(Some(&dir)).unwrap_err();
    assert_eq!(missing.code(), "template_unreadable");
    assert_eq!(Templates::load(None).unwrap(), Templates::embedded());
}

#[test]
fn the_template_cannot_read_files() {
    let typst = "#read(\"/etc/passwd\")".to_owned();
    let templates = Templates::from_strings(typst, "{{title}}".to_owned()).unwrap();
    let input = ReportInput {
        title: "t",
        source_name: "t.csv",
        kind: None,
        generated_at: datetime!(2025-01-01 0:00 UTC),
        data: b"a\n1\n",
    };
    let error = render_report(&input, &ReportSettings::default(), &templates).unwrap_err();
    assert_eq!(error.code(), "render_failed");
    assert!(error.to_string().contains("not found"), "{error}");
}

/// The CJK font the test adds (Debian's fonts-droid-fallback; `scripts/test.sh` installs it).
const CJK_FONT: &str = "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf";

/// The fonts `pdffonts` lists in a PDF.
fn fonts_in(pdf: &[u8], name: &str) -> String {
    let path = crate::support::out_dir().join(format!("{name}.pdf"));
    std::fs::write(&path, pdf).unwrap();
    let listed = crate::support::tool("pdffonts").arg(&path).output().unwrap();
    assert!(listed.status.success(), "pdffonts failed: {}", String::from_utf8_lossy(&listed.stderr));
    String::from_utf8_lossy(&listed.stdout).into_owned()
}

#[test]
fn fonts_in_the_templates_folder_cover_what_the_embedded_ones_lack() {
    let font = std::fs::read(CJK_FONT)
        .unwrap_or_else(|error| panic!("{CJK_FONT}: {error} (apt-get install fonts-droid-fallback)"));
    let dir = temp_dir("fonts");
    std::fs::create_dir_all(dir.join("fonts")).unwrap();
    std::fs::write(dir.join("fonts").join("DroidSansFallbackFull.ttf"), &font).unwrap();
    let with_font = Templates::load(Some(&dir)).unwrap();
    assert_eq!(with_font.added_fonts(), 1);
    let input = ReportInput {
        title: "cities",
        source_name: "cities.csv",
        kind: None,
        generated_at: datetime!(2025-01-01 0:00 UTC),
        data: "name,city\n李雷,北京\nJoão,São Paulo\n".as_bytes(),
    };
    let settings = ReportSettings::default();
    let plain = render_report(&input, &settings, &Templates::embedded()).unwrap();
    let covered = render_report(&input, &settings, &with_font).unwrap();
    assert!(!fonts_in(&plain.pdf, "cjk-embedded-only").contains("DroidSans"));
    assert!(fonts_in(&covered.pdf, "cjk-added").contains("DroidSansFallback"));
    let (text, _) = crate::support::pdf_text_and_pages(&covered.pdf, "cjk-added-text");
    assert!(text.contains("李雷") && text.contains("北京"), "{text}");

    // A file named as a font that holds none is refused when the templates load.
    std::fs::write(dir.join("fonts").join("broken.otf"), b"not a font").unwrap();
    let error = Templates::load(Some(&dir)).unwrap_err();
    assert_eq!(error.code(), "template_invalid");
    std::fs::remove_dir_all(dir).unwrap();
}
