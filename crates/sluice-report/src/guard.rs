//! A byte-level guard between the input and the CSV parser: it mirrors the parser's quoting rules to find the
//! line of an unclosed quote, and stops a cell or a row from growing past the limits before the parser buffers
//! it (so memory stays bounded whatever the input).

use std::io::{self, Read};

/// What the guard found wrong, carried through the parser as an `io::Error`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Violation {
    /// A cell longer than the limit.
    #[error("cell too large on line {line}")]
    CellTooLarge { line: u64 },
    /// A row with far more cells than allowed.
    #[error("too many cells on line {line}")]
    TooManyFields { line: u64, found: usize },
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
    line: u64,
    record_line: u64,
    quote_line: u64,
    cell: usize,
    fields: usize,
    enforce: bool,
    at_eof: bool,
}

impl<R: Read> Guard<R> {
    pub(crate) fn new(inner: R, delimiter: u8, max_cell: usize, max_fields: usize) -> Self {
        Self {
            inner,
            delimiter,
            max_cell,
            max_fields,
            state: State::StartField,
            line: 1,
            record_line: 1,
            quote_line: 1,
            cell: 0,
            fields: 1,
            enforce: true,
            at_eof: false,
        }
    }

    /// After the whole input went through: the line of a quote that was never closed.
    pub(crate) fn unclosed_quote(&self) -> Option<u64> {
        (self.at_eof && self.state == State::Quoted).then_some(self.quote_line)
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
            match self.state {
                State::StartField if byte == b'"' => {
                    self.state = State::Quoted;
                    self.quote_line = self.line;
                }
                State::StartField | State::Unquoted | State::AfterQuote if byte == self.delimiter => {
                    self.state = State::StartField;
                    self.cell = 0;
                    self.fields += 1;
                }
                State::StartField | State::Unquoted | State::AfterQuote if byte == b'\n' || byte == b'\r' => {
                    self.state = State::StartField;
                    self.cell = 0;
                    self.fields = 1;
                    self.record_line = self.line + u64::from(byte == b'\n');
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
            if byte == b'\n' {
                self.line += 1;
            }
            if self.enforce {
                if self.cell > self.max_cell {
                    let line = self.record_line.max(self.quote_line_if_quoted());
                    violation = Some(Violation::CellTooLarge { line });
                    self.enforce = false;
                } else if self.fields > self.max_fields {
                    violation = Some(Violation::TooManyFields { line: self.record_line, found: self.fields });
                    self.enforce = false;
                }
            }
        }
        violation.map_or(Ok(()), Err)
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
            return Ok(0);
        }
        let scanned = buf.get(..read).unwrap_or_default();
        self.scan(scanned).map_err(io::Error::other)?;
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &str, max_cell: usize) -> (Result<(), Violation>, Option<u64>) {
        let mut guard = Guard::new(input.as_bytes(), b',', max_cell, 10);
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
    fn stops_large_cells_and_rows() {
        assert!(matches!(run("a,b\n1,123456\n", 5).0, Err(Violation::CellTooLarge { line: 2 })));
        assert!(matches!(run("a,b\n1,\"1\n23456\"\n", 5).0, Err(Violation::CellTooLarge { line: 2 })));
        assert!(matches!(run(",,,,,,,,,,,\n", 100).0, Err(Violation::TooManyFields { line: 1, .. })));
    }
}
