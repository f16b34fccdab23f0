/// Escapes untrusted text for HTML and XML (text and quoted attribute values): `& < > " '` become entities, and
/// control characters other than newline and tab, and the noncharacters U+FFFE and U+FFFF (which XML forbids,
/// so an SVG holding one does not parse), become U+FFFD. Every value from an upload (a file name, a cell of a
/// CSV) goes through it before it reaches a notice, a report page or a chart.
pub fn escape_html(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len() + raw.len() / 8);
    for c in raw.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\u{fffe}' | '\u{ffff}' => out.push('\u{fffd}'),
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_quotes_and_controls() {
        assert_eq!(
            escape_html(r#"<img src=x onerror='alert(1)'> & "q""#),
            "&lt;img src=x onerror=&#39;alert(1)&#39;&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(escape_html("a\u{7}b\nc\td"), "a\u{fffd}b\nc\td");
    }

    #[test]
    fn replaces_every_character_xml_forbids() {
        assert_eq!(
            escape_html("\u{fffe}a\u{ffff}\r\u{0}\u{b}\u{c}\u{1f}"),
            "\u{fffd}a\u{fffd}\u{fffd}\u{fffd}\u{fffd}\u{fffd}\u{fffd}"
        );
        // What XML allows is kept: other noncharacters, private use, astral characters.
        assert_eq!(
            escape_html("\u{fdd0}\u{e000}\u{fffd}\u{1f600}\u{10ffff}"),
            "\u{fdd0}\u{e000}\u{fffd}\u{1f600}\u{10ffff}"
        );
        for c in (0..=0x10_ffff).filter_map(char::from_u32) {
            let allowed_in_xml =
                matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..);
            assert!(allowed_in_xml || escape_html(&c.to_string()) == "\u{fffd}", "{c:?}");
        }
    }
}
