/// An error and all its causes on one line, `outer: cause: root cause`, for messages a person reads (a job
/// document's `error.message`, a CLI summary). Errors here keep their causes in `source()`, never in `Display`,
/// so this is where the chain is written out.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn writes_every_cause() {
        let error = Outer(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused"));
        assert_eq!(error_chain(&error), "outer: connection refused");
    }
}
