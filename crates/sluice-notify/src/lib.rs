//! Completion notices: e-mail over SMTP or to a local outbox of .eml files
