//! The end of a run: the table on stdout, `summary.json` and `summary.html` (a self-contained contact sheet).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_encode};
use serde::Serialize;
use sluice_core::escape_html as escape;
use sluice_core::{Problem, VariantName, VariantSpec};

use super::manifest::os_bytes;
use super::{FileReport, Outcome};

/// A finished run, ready to be reported.
pub struct RunSummary<'a> {
    /// `convert` or `submit`.
    pub command: &'static str,
    /// The input folder as given.
    pub input: &'a Path,
    /// Every input, sorted by path.
    pub files: &'a [FileReport],
    /// Wall time of the run.
    pub elapsed: Duration,
    /// The variants asked for (empty when the server decides).
    pub variants: &'a [(VariantName, VariantSpec)],
}

/// Counts and rates of a run.
#[derive(Debug, Default, Serialize)]
pub struct Totals {
    /// Images converted in this run.
    pub converted: usize,
    /// Images converted by an earlier run and left alone.
    pub unchanged: usize,
    /// Images rejected.
    pub rejected: usize,
    /// Files that are not images (or links, special files).
    pub skipped: usize,
    /// Files that could not be processed for reasons not their own.
    pub failed: usize,
    /// Bytes of the images converted in this run.
    pub bytes_in: u64,
    /// Bytes of the outputs written in this run.
    pub bytes_out: u64,
    /// Wall time, seconds.
    pub elapsed_secs: f64,
    /// Input megapixels converted in this run.
    pub megapixels: f64,
    /// Input megapixels converted per second of wall time.
    pub megapixels_per_sec: f64,
}

impl RunSummary<'_> {
    /// Adds up the files.
    pub fn totals(&self) -> Totals {
        let mut totals = Totals { elapsed_secs: self.elapsed.as_secs_f64(), ..Totals::default() };
        for file in self.files {
            match file.outcome {
                Outcome::Converted => totals.converted += 1,
                Outcome::Unchanged => totals.unchanged += 1,
                Outcome::Rejected => totals.rejected += 1,
                Outcome::Skipped => totals.skipped += 1,
                Outcome::Failed => totals.failed += 1,
            }
            if file.outcome == Outcome::Converted && file.processed_now {
                totals.bytes_in += file.bytes;
                totals.bytes_out += file.outputs.iter().map(|output| output.bytes).sum::<u64>();
                if let Some((width, height)) = file.dimensions {
                    totals.megapixels += f64::from(width) * f64::from(height) / 1e6;
                }
            }
        }
        if totals.elapsed_secs > 0.0 {
            totals.megapixels_per_sec = totals.megapixels / totals.elapsed_secs;
        }
        totals
    }

    /// The table printed at the end, followed by one line per rejected or failed file.
    pub fn table(&self) -> String {
        let totals = self.totals();
        let mut text = String::new();
        let rows: [(&str, String); 10] = [
            ("converted", totals.converted.to_string()),
            ("unchanged", totals.unchanged.to_string()),
            ("rejected", totals.rejected.to_string()),
            ("skipped", totals.skipped.to_string()),
            ("failed", totals.failed.to_string()),
            ("bytes in", human_bytes(totals.bytes_in)),
            ("bytes out", human_bytes(totals.bytes_out)),
            ("elapsed", format!("{:.2} s", totals.elapsed_secs)),
            ("input MP", format!("{:.1}", totals.megapixels)),
            ("MP/s", format!("{:.1}", totals.megapixels_per_sec)),
        ];
        let _ = writeln!(text, "sluice {}: {}", self.command, display_path(self.input));
        for (label, value) in rows {
            if label == "failed" && totals.failed == 0 {
                continue;
            }
            let _ = writeln!(text, "  {label:<11} {value:>14}");
        }
        let troubled = self.files.iter().filter(|file| matches!(file.outcome, Outcome::Rejected | Outcome::Failed));
        for file in troubled {
            let problem = file.problem.as_ref().map_or_else(String::new, |p| format!("{}: {}", p.code, p.message));
            let _ = writeln!(text, "  {} {}  {problem}", file.outcome.as_str(), display_path(&file.path));
        }
        text
    }

    /// `summary.json`: the totals, the variants and every input with its facts.
    pub fn json(&self) -> serde_json::Value {
        let files: Vec<JsonFile<'_>> = self.files.iter().map(JsonFile::from).collect();
        let variants: Vec<serde_json::Value> =
            self.variants.iter().map(|(name, spec)| serde_json::json!({"name": name, "spec": spec})).collect();
        serde_json::json!({
            "command": self.command,
            "input": self.input.to_string_lossy(),
            "totals": self.totals(),
            "variants": variants,
            "files": files,
        })
    }

    /// `summary.html`: a contact sheet with one card per input, the thumbnail being the smallest output.
    pub fn html(&self) -> String {
        let totals = self.totals();
        let mut html = String::with_capacity(4096 + self.files.len() * 600);
        let title = format!("sluice {}: {}", self.command, self.input.to_string_lossy());
        let _ = write!(
            html,
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>{STYLE}</style></head><body>\n<h1>{}</h1>\n",
            escape(&title),
            escape(&title)
        );
        let _ = write!(
            html,
            "<p class=\"totals\">{} converted · {} unchanged · {} rejected · {} skipped{} · {} in · {} out · {:.2} s · {:.1} MP/s</p>\n<div class=\"sheet\">\n",
            totals.converted,
            totals.unchanged,
            totals.rejected,
            totals.skipped,
            if totals.failed > 0 { format!(" · {} failed", totals.failed) } else { String::new() },
            escape(&human_bytes(totals.bytes_in)),
            escape(&human_bytes(totals.bytes_out)),
            totals.elapsed_secs,
            totals.megapixels_per_sec,
        );
        for file in self.files {
            card(&mut html, file);
        }
        html.push_str("</div>\n</body></html>\n");
        html
    }

    /// Writes `summary.json` and `summary.html` into `out_dir`, atomically.
    pub fn write_files(&self, out_dir: &Path) -> anyhow::Result<()> {
        let json = serde_json::to_vec_pretty(&self.json()).context("cannot serialise the summary")?;
        super::output::write_atomically(out_dir, Path::new("summary.json"), &json)?;
        super::output::write_atomically(out_dir, Path::new("summary.html"), self.html().as_bytes())
    }
}

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}\
.sheet{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:12px}\
.card{border:1px solid #ccc;border-radius:6px;padding:8px;overflow-wrap:anywhere}\
.card img{width:100%;height:180px;object-fit:contain;background:repeating-conic-gradient(#eee 0 25%,#fff 0 50%) 0 0/16px 16px}\
.none{height:180px;display:flex;align-items:center;justify-content:center;background:#f4f4f4;color:#888}\
.rejected,.failed{border-color:#c33}.skipped{opacity:.7}.state{font-weight:600}\
.error{color:#a11}.reason{color:#666}ul{padding-left:1.2em;margin:.3em 0}small{color:#666}";

fn card(html: &mut String, file: &FileReport) {
    let state = file.outcome.as_str();
    let _ = write!(html, "<div class=\"card {state}\">");
    let thumbnail = file
        .outputs
        .iter()
        .zip(&file.output_paths)
        .filter(|(output, _)| output.media.is_image())
        .min_by_key(|(output, _)| u64::from(output.width) * u64::from(output.height));
    match thumbnail {
        Some((output, path)) => {
            let _ = write!(
                html,
                "<img src=\"{}\" alt=\"{}\" width=\"{}\" height=\"{}\" loading=\"lazy\">",
                escape(&relative_url(path)),
                escape(&output.name),
                output.width,
                output.height
            );
        }
        None => {
            let _ = write!(html, "<div class=\"none\">{}</div>", escape(state));
        }
    }
    let _ = write!(html, "<div><b>{}</b></div>", escape(&file.path.to_string_lossy()));
    let _ = write!(html, "<div><span class=\"state\">{}</span>", escape(state));
    if let Some(media) = file.media {
        let _ = write!(html, " · {}", escape(media.mime()));
    }
    if let Some((width, height)) = file.dimensions {
        let _ = write!(html, " · {width}×{height}");
    }
    let _ = write!(html, " · {}</div>", escape(&human_bytes(file.bytes)));
    if let Some(problem) = &file.problem {
        let class = if file.outcome == Outcome::Skipped { "reason" } else { "error" };
        let _ = write!(
            html,
            "<div class=\"{class}\"><code>{}</code> {}</div>",
            escape(&problem.code),
            escape(&problem.message)
        );
    }
    if !file.outputs.is_empty() {
        html.push_str("<ul>");
        for (index, output) in file.outputs.iter().enumerate() {
            let label = format!(
                "{} {}×{} {} ({})",
                output.name,
                output.width,
                output.height,
                output.media.extension(),
                human_bytes(output.bytes)
            );
            match file.output_paths.get(index) {
                Some(path) => {
                    let _ = write!(html, "<li><a href=\"{}\">{}</a></li>", escape(&relative_url(path)), escape(&label));
                }
                None => {
                    let _ = write!(html, "<li>{}</li>", escape(&label));
                }
            }
        }
        html.push_str("</ul>");
    }
    if let Some(job) = &file.job {
        let _ = write!(html, "<small>job {}</small>", escape(job));
    }
    html.push_str("</div>\n");
}

/// Characters kept as they are in a URL path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// A relative URL to `path` (relative to the summary), each segment percent-encoded from its raw bytes, so
/// non-UTF-8 and hostile names still link to the right file.
fn relative_url(path: &Path) -> String {
    let segments: Vec<String> =
        path.iter().map(|segment| percent_encode(&os_bytes(segment), SEGMENT).to_string()).collect();
    segments.join("/")
}

/// A path for a terminal: lossy UTF-8 with control characters escaped, so a hostile name cannot send
/// escape sequences.
pub fn display_path(path: &Path) -> String {
    path.to_string_lossy()
        .chars()
        .map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() })
        .collect()
}

/// Bytes in binary units, e.g. `11.9 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    #[allow(clippy::cast_precision_loss)] // display only
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

/// One input as written to `summary.json`.
#[derive(Serialize)]
struct JsonFile<'a> {
    path: String,
    /// True when the name is not valid UTF-8 and `path` is a lossy rendering of it.
    path_lossy: bool,
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_type: Option<&'static str>,
    bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    height: Option<u32>,
    outputs: Vec<JsonOutput>,
    /// Why a rejected or failed file was not converted.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a Problem>,
    /// Why a skipped file was not looked at.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a Problem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    job: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonOutput {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    content_type: &'static str,
    width: u32,
    height: u32,
    bytes: u64,
}

impl<'a> From<&'a FileReport> for JsonFile<'a> {
    fn from(file: &'a FileReport) -> Self {
        let outputs = file
            .outputs
            .iter()
            .enumerate()
            .map(|(index, output)| JsonOutput {
                name: output.name.clone(),
                path: file.output_paths.get(index).map(|path: &PathBuf| path.to_string_lossy().into_owned()),
                url: file.output_urls.get(index).cloned(),
                content_type: output.media.mime(),
                width: output.width,
                height: output.height,
                bytes: output.bytes,
            })
            .collect();
        Self {
            path: file.path.to_string_lossy().into_owned(),
            path_lossy: file.path.to_str().is_none(),
            state: file.outcome.as_str(),
            content_type: file.media.map(sluice_core::MediaType::mime),
            bytes: file.bytes,
            sha256: file.sha256.as_deref(),
            width: file.dimensions.map(|(width, _)| width),
            height: file.dimensions.map(|(_, height)| height),
            outputs,
            error: file.problem.as_ref().filter(|_| file.outcome != Outcome::Skipped),
            reason: file.problem.as_ref().filter(|_| file.outcome == Outcome::Skipped),
            job: file.job.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_that_matters() {
        assert_eq!(escape(r#"<a href="x">&'"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        assert_eq!(relative_url(Path::new("sub dir/a\"b.jpg.thumb.webp")), "sub%20dir/a%22b.jpg.thumb.webp");
        assert_eq!(display_path(Path::new("a\u{1b}[2Jb")), "a\\u{1b}[2Jb");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }
}
