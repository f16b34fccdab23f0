//! The completion notice of a finished job: subject, plain-text and HTML bodies.
//!
//! Everything that came from a client (file names) or from a converter (error messages) passes through
//! [`display_text`] (control and bidi characters replaced, length capped) and, in the HTML part, through
//! [`escape_html`]. Headers carry only our own words and the job id, so nothing a client sends can reach them.

use std::fmt::Write as _;

use sluice_core::{
    EmailAddress, FileRecord, FileState, JobId, JobRecord, JobState, OutputRecord, Problem, escape_html,
};

use crate::NotifyError;

/// The longest file name shown, in characters.
const MAX_NAME_CHARS: usize = 120;
/// The longest error message shown, in characters.
const MAX_MESSAGE_CHARS: usize = 500;

/// A rendered completion notice, ready for [`crate::Mailer::send`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    job: JobId,
    to: EmailAddress,
    subject: String,
    text: String,
    html: String,
}

impl Notice {
    /// Builds the completion notice of a finished job. `link(key)` turns a storage key into an absolute URL
    /// (the server passes `public_url + "/v1/files/" + key`) and `job_url` is the job document's absolute URL.
    ///
    /// Fails with [`NotifyError::NoRecipient`] when the job names nobody and [`NotifyError::NotFinished`]
    /// while it is queued or running; both are permanent.
    pub fn for_job(job: &JobRecord, job_url: &str, link: &dyn Fn(&str) -> String) -> Result<Notice, NotifyError> {
        let to = job.notification.to.clone().ok_or(NotifyError::NoRecipient { job: job.id })?;
        let failure = match job.state {
            JobState::Completed => None,
            JobState::Failed => Some(job.error.clone().unwrap_or_else(|| {
                Problem::new("job_failed", "the job could not be run; please upload the files again")
            })),
            JobState::Queued | JobState::Running => {
                return Err(NotifyError::NotFinished { job: job.id, state: job.state.as_str() });
            }
        };
        let view = JobView::new(job, job_url, link, failure);
        Ok(Notice { job: job.id, to, subject: view.subject(), text: view.text(), html: view.html() })
    }

    /// The job the notice reports on.
    pub fn job(&self) -> JobId {
        self.job
    }

    /// The recipient.
    pub fn to(&self) -> &EmailAddress {
        &self.to
    }

    /// The subject line (our words and the job id only).
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The plain-text body.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The HTML body.
    pub fn html(&self) -> &str {
        &self.html
    }

    /// The stable `Message-ID` (with angle brackets): the same for every delivery of this job's notice, so a
    /// duplicate sent after a crash is recognisable.
    pub fn message_id(&self) -> String {
        message_id(self.job)
    }
}

/// The `Message-ID` of the notice of `job`, e.g. `<01938c4e-7f1a-7cc0-a5b2-3d4e5f607182@sluice>`.
pub fn message_id(job: JobId) -> String {
    format!("<{job}@sluice>")
}

/// Characters that can reorder or hide text (bidi controls, line separators), shown as U+FFFD.
fn is_deceptive(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Makes untrusted text fit to show on one line: control characters (CR, LF, tab, DEL, C1) and bidi controls
/// become U+FFFD, and text longer than `max_chars` is cut with an ellipsis. It still needs [`escape_html`]
/// before going into HTML.
pub fn display_text(raw: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(raw.len().min(max_chars * 4));
    for (i, c) in raw.chars().enumerate() {
        if i == max_chars {
            out.push('…');
            break;
        }
        out.push(if c.is_control() || is_deceptive(c) { '\u{FFFD}' } else { c });
    }
    out
}

/// Sizes in SI units, as file managers show them: `999 B`, `1.2 kB`, `3.4 MB`.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    // Precision loss above 2^53 bytes does not matter for one decimal.
    #[allow(clippy::cast_precision_loss)]
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 999.95 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

fn count_files(n: usize) -> String {
    if n == 1 { "1 file".to_owned() } else { format!("{n} files") }
}

/// One output as shown: already made display-safe, not yet HTML-escaped.
struct OutputView {
    name: String,
    details: String,
    url: String,
}

/// One file as shown: already made display-safe, not yet HTML-escaped.
struct FileView {
    number: u32,
    name: String,
    about: String,
    state: FileState,
    problem: Option<Problem>,
    outputs: Vec<OutputView>,
}

impl OutputView {
    fn new(output: &OutputRecord, link: &dyn Fn(&str) -> String) -> Self {
        let size = human_bytes(output.bytes);
        let details = if output.width > 0 && output.height > 0 {
            format!("{}×{}, {size}", output.width, output.height)
        } else {
            // Reports have no pixel size; the format tells the PDF from the HTML page.
            format!("{}, {size}", output.media.extension().to_ascii_uppercase())
        };
        Self { name: display_text(&output.name, 64), details, url: display_text(&link(&output.key), 2048) }
    }
}

impl FileView {
    fn new(file: &FileRecord, link: &dyn Fn(&str) -> String) -> Self {
        let name = if file.name.trim().is_empty() { "(no name)".to_owned() } else { file.name.clone() };
        let problem = file.error.as_ref().map(|problem| Problem {
            code: display_text(&problem.code, 64),
            message: display_text(&problem.message, MAX_MESSAGE_CHARS),
        });
        Self {
            number: file.index.saturating_add(1),
            name: display_text(&name, MAX_NAME_CHARS),
            about: format!("{}, {}", file.media.mime(), human_bytes(file.bytes)),
            state: file.state,
            problem,
            outputs: file.outputs.iter().map(|output| OutputView::new(output, link)).collect(),
        }
    }

    fn outcome(&self) -> &'static str {
        match self.state {
            FileState::Converted => "converted",
            FileState::Rejected => "rejected",
            FileState::Pending => "not converted",
        }
    }
}

/// Everything the templates need, computed once.
struct JobView {
    id: JobId,
    job_url: String,
    failure: Option<Problem>,
    files: Vec<FileView>,
}

impl JobView {
    fn new(job: &JobRecord, job_url: &str, link: &dyn Fn(&str) -> String, failure: Option<Problem>) -> Self {
        let failure = failure.map(|problem| Problem {
            code: display_text(&problem.code, 64),
            message: display_text(&problem.message, MAX_MESSAGE_CHARS),
        });
        Self {
            id: job.id,
            job_url: display_text(job_url, 2048),
            failure,
            files: job.files.iter().map(|file| FileView::new(file, link)).collect(),
        }
    }

    /// "3 files converted, 1 rejected" and the like.
    fn tally(&self) -> String {
        let count = |state| self.files.iter().filter(|file| file.state == state).count();
        let (converted, rejected, pending) =
            (count(FileState::Converted), count(FileState::Rejected), count(FileState::Pending));
        let mut tally = match (converted, rejected) {
            (0, 0) if pending == 0 => "no files".to_owned(),
            (0, 0) => String::new(),
            (converted, 0) => format!("{} converted", count_files(converted)),
            (0, rejected) => format!("{} rejected", count_files(rejected)),
            (converted, rejected) => format!("{} converted, {rejected} rejected", count_files(converted)),
        };
        if pending > 0 {
            if tally.is_empty() {
                tally = format!("{} not converted", count_files(pending));
            } else {
                let _ = write!(tally, ", {pending} not converted");
            }
        }
        tally
    }

    fn subject(&self) -> String {
        match &self.failure {
            None => format!("sluice: job {} completed — {}", self.id, self.tally()),
            Some(_) => format!("sluice: job {} failed", self.id),
        }
    }

    fn text(&self) -> String {
        let mut out = String::new();
        let _ = match &self.failure {
            None => writeln!(out, "Your upload job {} has completed: {}.", self.id, self.tally()),
            Some(problem) => writeln!(
                out,
                "Your upload job {} failed: {} ({}).\nFiles: {}.",
                self.id,
                problem.message,
                problem.code,
                self.tally()
            ),
        };
        for file in &self.files {
            let _ = writeln!(out, "\n{}. {} ({}): {}", file.number, file.name, file.about, file.outcome());
            if let Some(problem) = &file.problem {
                let _ = writeln!(out, "   reason: {} ({})", problem.message, problem.code);
            }
            for output in &file.outputs {
                let _ = writeln!(out, "   - {} ({}): {}", output.name, output.details, output.url);
            }
        }
        let _ = writeln!(out, "\nJob details: {}", self.job_url);
        out.push_str("\n-- \nSent by sluice. This is an automated message; replies are not read.\n");
        out
    }

    fn html(&self) -> String {
        let mut out = String::new();
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>{}</title></head>\n\
             <body style=\"font-family: sans-serif; line-height: 1.4\">\n",
            escape_html(&self.subject())
        );
        let _ = match &self.failure {
            None => writeln!(
                out,
                "<p>Your upload job <code>{}</code> has completed: {}.</p>",
                self.id,
                escape_html(&self.tally())
            ),
            Some(problem) => writeln!(
                out,
                "<p>Your upload job <code>{}</code> <strong>failed</strong>: {} (<code>{}</code>).<br>Files: {}.</p>",
                self.id,
                escape_html(&problem.message),
                escape_html(&problem.code),
                escape_html(&self.tally())
            ),
        };
        if !self.files.is_empty() {
            out.push_str("<ol>\n");
            for file in &self.files {
                html_file(&mut out, file);
            }
            out.push_str("</ol>\n");
        }
        let _ = writeln!(out, "<p><a href=\"{}\">Job details</a></p>", escape_html(&self.job_url));
        out.push_str(
            "<p style=\"color: #666; font-size: small\">Sent by sluice. This is an automated message; \
             replies are not read.</p>\n</body>\n</html>\n",
        );
        out
    }
}

fn html_file(out: &mut String, file: &FileView) {
    let _ = write!(
        out,
        "<li value=\"{}\"><strong>{}</strong> <span style=\"color: #666\">({})</span>: {}",
        file.number,
        escape_html(&file.name),
        escape_html(&file.about),
        file.outcome()
    );
    if let Some(problem) = &file.problem {
        let _ = write!(out, " — {} (<code>{}</code>)", escape_html(&problem.message), escape_html(&problem.code));
    }
    if !file.outputs.is_empty() {
        out.push_str("\n  <ul>\n");
        for output in &file.outputs {
            let _ = writeln!(
                out,
                "    <li><a href=\"{}\">{}</a> ({})</li>",
                escape_html(&output.url),
                escape_html(&output.name),
                escape_html(&output.details)
            );
        }
        out.push_str("  </ul>\n");
    }
    out.push_str("</li>\n");
}

#[cfg(test)]
mod tests {
    use sluice_core::{MediaType, NotificationState};
    use time::OffsetDateTime;

    use super::*;

    fn job(state: JobState) -> JobRecord {
        let id = JobId::new();
        let converted = FileRecord {
            index: 0,
            name: "holiday.jpg".into(),
            media: MediaType::Jpeg,
            bytes: 2_345_678,
            sha256: "ab".repeat(32),
            key: format!("originals/{id}/0.jpg"),
            state: FileState::Converted,
            error: None,
            outputs: vec![OutputRecord {
                name: "thumb".into(),
                key: format!("outputs/{id}/0/thumb.webp"),
                media: MediaType::Webp,
                width: 256,
                height: 171,
                bytes: 12_345,
            }],
        };
        let rejected = FileRecord {
            index: 1,
            name: "<script>alert(1)</script>\r\nBcc: x@y.z\u{202E}gpj.exe".into(),
            media: MediaType::Other,
            bytes: 10,
            sha256: "cd".repeat(32),
            key: format!("originals/{id}/1.bin"),
            state: FileState::Rejected,
            error: Some(Problem::new("unsupported_type", "not an image <b>we</b> can read")),
            outputs: Vec::new(),
        };
        let mut job = JobRecord::new(
            id,
            vec!["thumb".parse().unwrap()],
            vec![converted, rejected],
            Some("ana@example.com".parse().unwrap()),
            OffsetDateTime::UNIX_EPOCH,
        );
        job.state = state;
        job
    }

    fn link(key: &str) -> String {
        format!("https://sluice.example/v1/files/{key}")
    }

    #[test]
    fn completed_notice_lists_outputs_and_reasons() {
        let job = job(JobState::Completed);
        let notice = Notice::for_job(&job, "https://sluice.example/v1/jobs/x", &link).unwrap();
        assert_eq!(notice.subject(), format!("sluice: job {} completed — 1 file converted, 1 rejected", job.id));
        assert_eq!(notice.message_id(), format!("<{}@sluice>", job.id));
        let thumb = link(&job.files[0].outputs[0].key);
        for body in [notice.text(), notice.html()] {
            assert!(body.contains(&thumb), "{body}");
            assert!(body.contains("https://sluice.example/v1/jobs/x"), "{body}");
            assert!(body.contains("256×171, 12.3 kB"), "{body}");
            assert!(body.contains("unsupported_type"), "{body}");
            assert!(!body.contains('\u{202E}'), "{body}");
            assert!(!body.contains("\r\nBcc"), "{body}");
        }
        assert!(notice.text().contains("<script>alert(1)</script>\u{FFFD}\u{FFFD}Bcc: x@y.z"));
        assert!(!notice.html().contains("<script>"));
        assert!(!notice.html().contains("<b>we</b>"));
        assert!(notice.html().contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }

    #[test]
    fn failed_job_says_so_with_its_error() {
        let mut job = job(JobState::Failed);
        job.error = Some(Problem::new("storage_unavailable", "storage could not be reached"));
        job.files[1].state = FileState::Pending;
        job.files[1].error = None;
        let notice = Notice::for_job(&job, "https://x/j", &link).unwrap();
        assert_eq!(notice.subject(), format!("sluice: job {} failed", job.id));
        assert!(notice.text().contains("failed: storage could not be reached (storage_unavailable)"));
        assert!(notice.text().contains("1 file converted, 1 not converted"), "{}", notice.text());
        assert!(notice.html().contains("<strong>failed</strong>"));
    }

    #[test]
    fn unfinished_or_unaddressed_jobs_have_no_notice() {
        let running = job(JobState::Running);
        let error = Notice::for_job(&running, "u", &link).unwrap_err();
        assert!(matches!(error, NotifyError::NotFinished { state: "running", .. }));
        assert!(error.is_permanent());
        let mut nobody = job(JobState::Completed);
        nobody.notification.to = None;
        nobody.notification.state = NotificationState::None;
        assert_eq!(Notice::for_job(&nobody, "u", &link).unwrap_err().code(), "no_recipient");
    }

    #[test]
    fn helpers() {
        assert_eq!(escape_html(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
        assert_eq!(display_text("a\r\nb\u{7f}\u{2066}c", 100), "a\u{FFFD}\u{FFFD}b\u{FFFD}\u{FFFD}c");
        assert_eq!(display_text("abcdef", 3), "abc…");
        assert_eq!(display_text("abc", 3), "abc");
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1000), "1.0 kB");
        assert_eq!(human_bytes(999_999), "1.0 MB");
        assert_eq!(human_bytes(2_345_678), "2.3 MB");
        assert_eq!(human_bytes(u64::MAX), "18446744.1 TB");
    }
}
