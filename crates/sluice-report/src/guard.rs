//! A byte-level guard between the input and the CSV parser: it mirrors the parser's quoting rules to find the
//! line of an unclosed quote, and stops a cell or a row from growing past the limits before the parser buffers
//! it (so memory stays bounded whatever the input). A record with too many fields is followed to its end, its
//! fields counted and not kept, so that the error can say how many it has.
//!
//! It also counts lines as an editor shows them (LF, CRLF and a lone CR each end one) and notes the line and byte
//! offset of each record's first byte, so that a record the parser returns can be given its line from its byte
//! offset ([`Guard::record_line_at`]); the parser's own line count misses CRLF and blank lines.

use std::collections::VecDeque;
use std::io::{self, Read};

/// What the guard found wrong, carried through the parser as an `io::Error`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Violation {
    /// A cell longer than the limit.
    #[error("cell too large on line {line}")]
    CellTooLarge { line: u64 },
    /// A row with far more cells than allowed: the line it starts on and how many cells it has in all.
    #[error("too many cells on line {line}")]
    TooManyFields { line: u64, found: usize },
}

/// Counts lines as an editor does: LF, CRLF and a lone CR each end one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LineCounter {
    line: u64,
    after_cr: bool,
}

impl LineCounter {
    /// A counter whose first line is `line`.
    pub(crate) fn starting_at(line: u64) -> Self {
        Self { line, after_cr: false }
    }

    /// Follows one byte: a line break moves to the next line (the LF of a CRLF does not move again).
    pub(crate) fn feed(&mut self, byte: u8) {
        if byte == b'\r' || (byte == b'\n' && !self.after_cr) {
            self.line += 1;
        }
        self.after_cr = byte == b'\r';
    }

    /// The line the next byte is on.
    pub(crate) fn line(&self) -> u64 {
        self.line
    }
}

/// How many line breaks `bytes` holds (see [`LineCounter`]).
pub(crate) fn line_breaks(bytes: &[u8]) -> u64 {
    let mut counter = LineCounter::starting_at(0);
    bytes.iter().for_each(|&byte| counter.feed(byte));
    counter.line()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    StartField,
    Unquoted,
    Quoted,
    AfterQuote,
}

/// Wraps the input; see the module documentation.
pub(crate) struct Guard<R> {
    inner: R,
    delimiter: u8,
    max_cell: usize,
    max_fields: usize,
    state: State,
    lines: LineCounter,
    /// Bytes followed so far: the offset of the next byte.
    offset: u64,
    /// Whether the next byte starts a line outside quotes (so, unless it is a line break, a record).
    at_line_start: bool,
    /// The byte offset and line of the first byte of each record seen but not yet asked about.
    record_starts: VecDeque<(u64, u64)>,
    record_line: u64,
    quote_line: u64,
    cell: usize,
    fields: usize,
    enforce: bool,
    at_eof: bool,
    /// Whether the record that broke the field limit is still being counted.
    counting: bool,
    /// How many fields that record has, once it ended.
    counted: usize,
}

impl<R: Read> Guard<R> {
    /// Guards `inner`, whose first byte is on line `first_line` of the file.
    pub(crate) fn new(inner: R, delimiter: u8, max_cell: usize, max_fields: usize, first_line: u64) -> Self {
        Self {
            inner,
            delimiter,
            max_cell,
            max_fields,
            state: State::StartField,
            lines: LineCounter::starting_at(first_line),
            offset: 0,
            at_line_start: true,
            record_starts: VecDeque::new(),
            record_line: first_line,
            quote_line: first_line,
            cell: 0,
            fields: 1,
            enforce: true,
            at_eof: false,
            counting: false,
            counted: 0,
        }
    }

    /// After the whole input went through: the line of a quote that was never closed.
    pub(crate) fn unclosed_quote(&self) -> Option<u64> {
        (self.at_eof && self.state == State::Quoted).then_some(self.quote_line)
    }

    /// The line of the record the parser started reading at byte `offset` (its position): the line of the first
    /// byte at or after `offset` that is not a line break (blank lines before a record are skipped). Records
    /// before it are forgotten, so memory holds only the records the parser has buffered.
    pub(crate) fn record_line_at(&mut self, offset: u64) -> u64 {
        while let Some(&(start, line)) = self.record_starts.front() {
            if start >= offset {
                return line;
            }
            self.record_starts.pop_front();
        }
        self.record_line
    }

    /// Reads the rest of the input without limits, so that [`Guard::unclosed_quote`] can answer.
    pub(crate) fn drain(&mut self) -> io::Result<()> {
        self.enforce = false;
        let mut buffer = [0u8; 16 * 1024];
        while self.read(&mut buffer)? > 0 {}
        Ok(())
    }

    /// Follows the bytes; the first limit broken is reported after the whole buffer was followed, so that the
    /// quote state stays right for [`Guard::drain`].
    fn scan(&mut self, bytes: &[u8]) -> Result<(), Violation> {
        let mut violation = None;
        for &byte in bytes {
            if self.at_line_start && byte != b'\n' && byte != b'\r' {
                self.at_line_start = false;
                self.record_line = self.lines.line();
                if self.enforce {
                    self.record_starts.push_back((self.offset, self.record_line));
                }
            }
            match self.state {
                State::StartField if byte == b'"' => {
                    self.state = State::Quoted;
                    self.quote_line = self.lines.line();
                }
                State::StartField | State::Unquoted | State::AfterQuote if byte == self.delimiter => {
                    self.state = State::StartField;
                    self.cell = 0;
                    self.fields += 1;
                }
                State::StartField | State::Unquoted | State::AfterQuote if byte == b'\n' || byte == b'\r' => {
                    self.end_counting();
                    self.state = State::StartField;
                    self.cell = 0;
                    self.fields = 1;
                    self.at_line_start = true;
                }
                State::Quoted if byte == b'"' => self.state = State::AfterQuote,
                State::AfterQuote if byte == b'"' => {
                    self.state = State::Quoted;
                    self.cell += 1;
                }
                State::Quoted => self.cell += 1,
                State::StartField | State::Unquoted | State::AfterQuote => {
                    self.state = State::Unquoted;
                    self.cell += 1;
                }
            }
            self.lines.feed(byte);
            self.offset += 1;
            if self.enforce {
                if self.cell > self.max_cell {
                    let line = self.record_line.max(self.quote_line_if_quoted());
                    violation = Some(Violation::CellTooLarge { line });
                    self.enforce = false;
                } else if self.fields > self.max_fields {
                    violation = Some(Violation::TooManyFields { line: self.record_line, found: self.fields });
                    self.enforce = false;
                    self.counting = true;
                }
            }
        }
        violation.map_or(Ok(()), Err)
    }

    /// The record being counted ended (at a line end outside quotes, or at the end of the input).
    fn end_counting(&mut self) {
        if self.counting {
            self.counting = false;
            self.counted = self.fields;
        }
    }

    /// Reads on to the end of the record that broke the field limit, counting its fields without keeping them,
    /// and returns how many it has.
    fn count_to_record_end(&mut self) -> io::Result<usize> {
        let mut buffer = [0u8; 16 * 1024];
        while self.counting {
            let read = match self.inner.read(&mut buffer) {
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            };
            if read == 0 {
                self.at_eof = true;
                self.end_counting();
            } else {
                self.scan(buffer.get(..read).unwrap_or_default()).map_err(io::Error::other)?;
            }
        }
        Ok(self.counted)
    }

    fn quote_line_if_quoted(&self) -> u64 {
        if self.state == State::Quoted { self.quote_line } else { 0 }
    }
}

impl<R: Read> Read for Guard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        if read == 0 {
            self.at_eof = true;
            self.end_counting();
            return Ok(0);
        }
        let scanned = buf.get(..read).unwrap_or_default();
        match self.scan(scanned) {
            Ok(()) => Ok(read),
            Err(Violation::TooManyFields { line, .. }) => {
                let found = self.count_to_record_end()?;
                Err(io::Error::other(Violation::TooManyFields { line, found }))
            }
            Err(violation) => Err(io::Error::other(violation)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &str, max_cell: usize) -> (Result<(), Violation>, Option<u64>) {
        let mut guard = Guard::new(input.as_bytes(), b',', max_cell, 10, 1);
        let result = guard.scan(input.as_bytes());
        guard.at_eof = true;
        (result, guard.unclosed_quote())
    }

    #[test]
    fn tracks_quotes_like_the_parser() {
        assert_eq!(run("a,\"b\nc\",d\n1,2,3\n", 100).1, None);
        assert_eq!(run("a,\"b \"\"q\"\" c\",d\n", 100).1, None);
        assert_eq!(run("a,b\n1,\"open\n2,3\n", 100).1, Some(2));
        assert_eq!(run("a,5\" screen,b\n", 100).1, None);
    }

    #[test]
    fn counts_lf_crlf_and_lone_cr_as_one_line_break_each() {
        assert_eq!(line_breaks(b"a\nb\r\nc\rd\r\r\n\n"), 6);
        assert_eq!(line_breaks(b"no break"), 0);
    }

    #[test]
    fn gives_each_record_its_line_and_forgets_records_already_read() {
        let mut input = String::from("h1,h2\r\n\r\n");
        for i in 0..100_000 {
            input.push_str(&format!("{i},\"x\ny\"\r\n\n"));
        }
        let guard = Guard::new(input.as_bytes(), b',', 100, 10, 1);
        let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(guard);
        let mut record = csv::ByteRecord::new();
        let mut lines = Vec::new();
        let mut most_remembered = 0;
        while reader.read_byte_record(&mut record).unwrap() {
            let offset = record.position().unwrap().byte();
            lines.push(reader.get_mut().record_line_at(offset));
            most_remembered = most_remembered.max(reader.get_ref().record_starts.len());
        }
        assert_eq!(lines.len(), 100_001);
        assert_eq!(lines[..4], [1, 3, 6, 9]);
        assert_eq!(lines.last(), Some(&(3 + 3 * 99_999)));
        assert!(most_remembered < 2_000, "{most_remembered} records remembered");
    }

    #[test]
    fn stops_large_cells_and_rows() {
        assert!(matches!(run("a,b\n1,123456\n", 5).0, Err(Violation::CellTooLarge { line: 2 })));
        assert!(matches!(run("a,b\n1,\"1\n23456\"\n", 5).0, Err(Violation::CellTooLarge { line: 2 })));
        assert!(matches!(run(",,,,,,,,,,,\n", 100).0, Err(Violation::TooManyFields { line: 1, .. })));
    }

    /// Reads `input` through a guard in small chunks, as the parser does; returns the violation it reports.
    fn violation(input: &[u8], max_fields: usize) -> Option<Violation> {
        let mut guard = Guard::new(input, b',', 100, max_fields, 1);
        let mut buffer = [0u8; 64];
        loop {
            match guard.read(&mut buffer) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(error) => {
                    return error.into_inner().and_then(|inner| inner.downcast::<Violation>().ok()).map(|v| *v);
                }
            }
        }
    }

    #[test]
    fn an_overlong_record_is_counted_to_its_end() {
        let wide: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
        let row = wide.join(",");
        let input = format!("{row}\n{row}\n");
        assert!(matches!(violation(input.as_bytes(), 408), Some(Violation::TooManyFields { line: 1, found: 1000 })));
        // On a later line, across a quoted newline, and at the end of the input without a line end.
        let input = format!("a,b\n1,\"x\ny\",{row}");
        assert!(matches!(violation(input.as_bytes(), 408), Some(Violation::TooManyFields { line: 2, found: 1002 })));
        // Millions of fields are counted, not kept.
        let input = ",".repeat(2_000_000);
        assert!(matches!(
            violation(input.as_bytes(), 408),
            Some(Violation::TooManyFields { line: 1, found: 2_000_001 })
        ));
    }
}
