/// Escapes untrusted text for HTML and XML (text and quoted attribute values): `& < > " '` become entities, and
/// control characters other than newline and tab become U+FFFD. Every value from an upload (a file name, a cell
/// of a CSV) goes through it before it reaches a notice, a report page or a chart.
pub fn escape_html(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len() + raw.len() / 8);
    for c in raw.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
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
}
