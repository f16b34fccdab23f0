//! A small incremental parser of `text/event-stream` bodies (server-sent events), for `sluice submit`.

/// One server-sent event.
#[derive(Debug, PartialEq, Eq)]
pub struct ServerEvent {
    /// The `event:` name (`message` when none was given).
    pub name: String,
    /// The `data:` lines, joined with newlines.
    pub data: String,
}

/// An incremental `text/event-stream` parser (lines may end in LF or CRLF; chunks may split anywhere).
#[derive(Default)]
pub struct EventParser {
    buffer: Vec<u8>,
    name: String,
    data: Vec<String>,
}

impl EventParser {
    /// Takes the next bytes of the stream; returns the events they complete.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<ServerEvent> {
        self.buffer.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some(end) = self.buffer.iter().position(|&byte| byte == b'\n') {
            let mut line: Vec<u8> = self.buffer.drain(..=end).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8_lossy(&line);
            if line.is_empty() {
                if !self.data.is_empty() {
                    let name = if self.name.is_empty() { "message".to_owned() } else { std::mem::take(&mut self.name) };
                    events.push(ServerEvent { name, data: self.data.join("\n") });
                }
                self.data.clear();
                self.name.clear();
            } else if line.starts_with(':') {
                // A comment (keep-alive).
            } else {
                let (field, value) = line.split_once(':').unwrap_or((&line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                match field {
                    "event" => value.clone_into(&mut self.name),
                    "data" => self.data.push(value.to_owned()),
                    _ => {}
                }
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events_split_anywhere() {
        let stream =
            b"event: snapshot\r\ndata: {\"a\":1}\r\n\r\n: keep-alive\n\nevent: completed\ndata: x\ndata: y\n\n";
        let mut parser = EventParser::default();
        let mut events = Vec::new();
        for piece in stream.chunks(5) {
            events.extend(parser.feed(piece));
        }
        assert_eq!(
            events,
            [
                ServerEvent { name: "snapshot".into(), data: "{\"a\":1}".into() },
                ServerEvent { name: "completed".into(), data: "x\ny".into() },
            ]
        );
    }
}
