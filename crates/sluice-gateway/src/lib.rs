//! The HTTP gateway of sluice: uploads, jobs, files, events, docs
