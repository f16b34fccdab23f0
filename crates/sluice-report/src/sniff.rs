//! Deciding what an input is: tabular or not (for the gateway), its delimiter, its byte-order mark.

use serde::Serialize;

/// The kinds of report input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TabularKind {
    /// Delimited text: comma, semicolon, tab or pipe separated values.
    Csv,
    /// A JSON array of flat objects.
    Json,
}

impl TabularKind {
    /// The media type an input of this kind is stored and served as.
    pub fn media(self) -> sluice_core::MediaType {
        match self {
            Self::Csv => sluice_core::MediaType::Csv,
            Self::Json => sluice_core::MediaType::Json,
        }
    }

    /// The kind an upload stored as `media` was recorded as, so that its reports read it the same way; `None`
    /// for a type that is not a table.
    pub fn from_media(media: sluice_core::MediaType) -> Option<Self> {
        match media {
            sluice_core::MediaType::Csv => Some(Self::Csv),
            sluice_core::MediaType::Json => Some(Self::Json),
            _ => None,
        }
    }
}

/// A file name's extension in lower case; empty when it has none.
fn lowercase_extension(name: &str) -> String {
    name.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()).unwrap_or_default()
}

/// The kind a file name's extension says (`.json`, or `.csv` and `.tsv`), in any case.
pub(crate) fn kind_from_name(name: &str) -> Option<TabularKind> {
    let extension = lowercase_extension(name);
    match extension.as_str() {
        "json" => Some(TabularKind::Json),
        "csv" | "tsv" => Some(TabularKind::Csv),
        _ => None,
    }
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";
const IMAGE_EXTENSIONS: &[&str] =
    &["jpg", "jpeg", "png", "gif", "webp", "avif", "bmp", "tif", "tiff", "heic", "heif", "svg", "ico", "jxl"];
const CSV_TYPES: &[&str] =
    &["text/csv", "text/x-csv", "application/csv", "text/tab-separated-values", "text/tsv", "application/vnd.ms-excel"];

/// Strips a UTF-8 byte-order mark.
pub(crate) fn strip_bom(data: &[u8]) -> &[u8] {
    data.strip_prefix(UTF8_BOM).unwrap_or(data)
}

/// Whether the head starts like a UTF-16 or UTF-32 text (a BOM), which we do not read.
pub(crate) fn is_utf16(head: &[u8]) -> bool {
    head.starts_with(b"\xFF\xFE") || head.starts_with(b"\xFE\xFF")
}

/// What a spreadsheet workbook (a binary file, never text) is, from its first bytes: an Excel `.xlsx` or an
/// OpenDocument `.ods` (ZIP archives), another ZIP archive, or an Excel 97-2003 `.xls` (an OLE2 compound file).
pub(crate) fn workbook_kind(head: &[u8]) -> Option<&'static str> {
    let holds = |needle: &[u8]| head.windows(needle.len()).any(|window| window == needle);
    if head.starts_with(b"PK\x03\x04") {
        Some(if holds(b"xl/") {
            "an Excel workbook (.xlsx)"
        } else if holds(b"application/vnd.oasis.opendocument.spreadsheet") {
            "an OpenDocument spreadsheet (.ods)"
        } else {
            "a ZIP archive (such as an Excel .xlsx or OpenDocument .ods workbook)"
        })
    } else if head.starts_with(b"\xD0\xCF\x11\xE0") {
        Some("an Excel 97-2003 workbook (.xls) or another Office document")
    } else {
        None
    }
}

/// Decides whether an upload is a report input, from its first bytes (a few KiB are enough), its client file
/// name and its declared `Content-Type`.
///
/// A file named or declared as an image, or whose bytes start like one, is never tabular. A `.json` name or a
/// JSON type needs an array whose first element is a flat object. A `.csv`/`.tsv` name or a CSV type needs UTF-8
/// text without NUL bytes that splits into records. Anything else is not a report input.
pub fn looks_like_tabular(head: &[u8], name: &str, declared: &str) -> Option<TabularKind> {
    let extension = lowercase_extension(name);
    let declared = declared.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    if declared.starts_with("image/") || IMAGE_EXTENSIONS.contains(&extension.as_str()) || looks_like_image(head) {
        return None;
    }
    let json_type = declared == "application/json" || declared == "text/json" || declared.ends_with("+json");
    let named = kind_from_name(name);
    if named == Some(TabularKind::Json) || (json_type && named.is_none()) {
        return json_head_is_table(head).then_some(TabularKind::Json);
    }
    if named == Some(TabularKind::Csv) || CSV_TYPES.contains(&declared.as_str()) {
        return csv_head_is_text(head).then_some(TabularKind::Csv);
    }
    None
}

fn looks_like_image(head: &[u8]) -> bool {
    head.starts_with(b"\xFF\xD8\xFF")
        || head.starts_with(b"\x89PNG")
        || head.starts_with(b"GIF8")
        || (head.starts_with(b"RIFF") && head.get(8..12) == Some(b"WEBP"))
}

/// The head is UTF-8 (a character cut at the end is fine), has no NUL, and holds at least one record.
fn csv_head_is_text(head: &[u8]) -> bool {
    let head = strip_bom(head);
    if head.is_empty() || head.contains(&0) || is_utf16(head) {
        return false;
    }
    let text_ok = match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(error) => error.error_len().is_none() && error.valid_up_to() + 4 > head.len(),
    };
    text_ok && head.iter().any(|b| !b.is_ascii_whitespace())
}

/// The head opens a JSON array whose first element is a flat object (or the head ends inside it).
fn json_head_is_table(head: &[u8]) -> bool {
    let text = strip_bom(head);
    let trimmed = text.trim_ascii_start();
    let Some(rest) = trimmed.strip_prefix(b"[") else { return false };
    let rest = rest.trim_ascii_start();
    if rest.starts_with(b"]") {
        return true;
    }
    if !rest.starts_with(b"{") {
        return false;
    }
    let mut stream = serde_json::Deserializer::from_slice(rest).into_iter::<crate::json::FlatObject>();
    match stream.next() {
        Some(Ok(_)) => true,
        Some(Err(error)) => error.is_eof(),
        None => false,
    }
}

/// Excel's first line naming the delimiter (`sep=;`, `sep=|`, any one punctuation character or a tab, then the
/// end of the line): the delimiter and the line's length with its line break.
pub(crate) fn separator_line(head: &[u8]) -> Option<(u8, usize)> {
    const PREFIX: &[u8] = b"sep=";
    if !head.get(..PREFIX.len())?.eq_ignore_ascii_case(PREFIX) {
        return None;
    }
    let delimiter = *head.get(PREFIX.len())?;
    if !(delimiter == b'\t' || delimiter.is_ascii_punctuation()) || delimiter == b'"' {
        return None;
    }
    let after = head.get(PREFIX.len() + 1..).unwrap_or_default();
    let line_break = if after.starts_with(b"\r\n") {
        2
    } else if after.is_empty() {
        0
    } else if after.starts_with(b"\n") || after.starts_with(b"\r") {
        1
    } else {
        return None;
    };
    Some((delimiter, PREFIX.len() + 1 + line_break))
}

/// Picks the delimiter from the head of the data: the candidate that splits the first records into the same
/// number (at least two) of fields most consistently; ties go to the order `,` `;` tab `|`. A `.tsv` file
/// prefers tab. One column (no candidate splits anything) reads as comma-separated.
pub(crate) fn sniff_delimiter(head: &[u8], complete: bool) -> u8 {
    let head = if complete {
        head
    } else {
        match head.iter().rposition(|&b| b == b'\n') {
            Some(end) => head.get(..end).unwrap_or(head),
            None => head,
        }
    };
    let mut best = (b',', 0usize, 0usize);
    for delimiter in [b',', b';', b'\t', b'|'] {
        let mut reader =
            csv::ReaderBuilder::new().delimiter(delimiter).has_headers(false).flexible(true).from_reader(head);
        let mut counts: Vec<usize> = Vec::new();
        let mut record = csv::ByteRecord::new();
        while counts.len() < 50 {
            match reader.read_byte_record(&mut record) {
                Ok(true) => counts.push(record.len()),
                Ok(false) | Err(_) => break,
            }
        }
        let Some(&first) = counts.first() else { continue };
        if first < 2 {
            continue;
        }
        let consistent = counts.iter().filter(|&&count| count == first).count();
        let score = (consistent, first);
        if score > (best.1, best.2) {
            best = (delimiter, consistent, first);
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_delimiters() {
        assert_eq!(sniff_delimiter(b"a,b,c\n1,2,3\n", true), b',');
        assert_eq!(sniff_delimiter(b"a;b;c\n1,5;2,5;3\n", true), b';');
        assert_eq!(sniff_delimiter(b"a\tb\n1,5\t2\n", true), b'\t');
        assert_eq!(sniff_delimiter(b"name;note\n\"Smith, J\";\"a;b\"\nx;y\n", true), b';');
        assert_eq!(sniff_delimiter(b"name,note\n\"a;b;c\",x\n\"d;e\",y\n", true), b',');
        assert_eq!(sniff_delimiter(b"single\n1\n2\n", true), b',');
        assert_eq!(sniff_delimiter(b"a|b\n1|2\n", true), b'|');
        // A cut last line does not count.
        assert_eq!(sniff_delimiter(b"a;b\n1;2\n3,4,5,6,7,8", false), b';');
    }

    #[test]
    fn reads_excel_separator_lines() {
        assert_eq!(separator_line(b"sep=;\na;b\n"), Some((b';', 6)));
        assert_eq!(separator_line(b"SEP=|\r\na|b"), Some((b'|', 7)));
        assert_eq!(separator_line(b"sep=\t\ra"), Some((b'\t', 6)));
        assert_eq!(separator_line(b"sep=,"), Some((b',', 5)));
        for not_one in [&b"sep=x\n"[..], b"sep=,,b\n", b"sep=\"\n", b"sep=\n", b"a,sep=;\n", b"sep"] {
            assert_eq!(separator_line(not_one), None, "{:?}", String::from_utf8_lossy(not_one));
        }
    }

    #[test]
    fn detects_tabular_inputs() {
        assert_eq!(looks_like_tabular(b"a,b\n1,2\n", "sales.csv", ""), Some(TabularKind::Csv));
        assert_eq!(looks_like_tabular(b"a\tb\n1\t2\n", "x.TSV", "application/octet-stream"), Some(TabularKind::Csv));
        assert_eq!(looks_like_tabular(b"a,b\n", "upload", "text/csv; charset=utf-8"), Some(TabularKind::Csv));
        assert_eq!(looks_like_tabular(b"\xEF\xBB\xBFa;b\n", "v.csv", ""), Some(TabularKind::Csv));
        assert_eq!(looks_like_tabular(br#"[{"a": 1, "b": "x"}, {"a"#, "d.json", ""), Some(TabularKind::Json));
        assert_eq!(looks_like_tabular(br#" [ {"a": 1} ]"#, "data", "application/json"), Some(TabularKind::Json));
    }

    #[test]
    fn rejects_non_tabular_inputs() {
        assert_eq!(looks_like_tabular(b"a,b\n1,2\n", "photo.jpg", "text/csv"), None);
        assert_eq!(looks_like_tabular(b"a,b\n1,2\n", "sales.csv", "image/png"), None);
        assert_eq!(looks_like_tabular(b"\xFF\xD8\xFF\xE0rest", "sales.csv", "text/csv"), None);
        assert_eq!(looks_like_tabular(b"a,b\0\n", "sales.csv", ""), None);
        assert_eq!(looks_like_tabular(b"\xC3\x28 bad", "sales.csv", ""), None);
        assert_eq!(looks_like_tabular(b"a,b\n1,2\n", "notes.txt", "text/plain"), None);
        assert_eq!(looks_like_tabular(br#"{"a": 1}"#, "d.json", ""), None);
        assert_eq!(looks_like_tabular(br#"[{"a": {"nested": 1}}]"#, "d.json", ""), None);
        assert_eq!(looks_like_tabular(br"[1, 2]", "d.json", ""), None);
        assert_eq!(looks_like_tabular(b"", "empty.csv", ""), None);
    }
}
