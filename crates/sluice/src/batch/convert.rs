//! `sluice convert INPUT_DIR --out OUT_DIR`: converts a folder on this machine with a bounded pool of
//! worker threads, each running [`sluice_convert::convert_image`] (one decode for all variants) or
//! [`sluice_report::render_report`] (a PDF and an HTML report of a table) on one file at a time. No async runtime: the work is CPU-bound and the file I/O is plain.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use anyhow::Context;
use sha2::{Digest, Sha256};
use sluice::Settings;
use sluice_convert::{ConvertError, ConvertLimits, ConvertSettings, convert_image, probe};
use sluice_core::{MediaType, Problem, VariantName, VariantSpec, error_chain};
use sluice_pipeline::Reports;
use sluice_report::{ReportInput, TabularKind, render_report};
use time::OffsetDateTime;

use super::classify::{self, Handler, NotConverted, SNIFF_LEN};
use super::manifest::{self, Entry, Manifest};
use super::output;
use super::progress::Progress;
use super::report::RunSummary;
use super::walk::{self, InputFile};
use super::{FileReport, Outcome, OutputFacts};

/// The largest input file read into memory; larger files are rejected (`file_too_large`) unread.
pub const MAX_INPUT_BYTES: u64 = 1 << 30;

/// What `sluice convert` was asked to do.
#[derive(Debug)]
pub struct ConvertArgs {
    /// The folder to convert.
    pub input: PathBuf,
    /// Where outputs, the summaries and the manifest go.
    pub out: PathBuf,
    /// A config file layered over the defaults.
    pub config: Option<PathBuf>,
    /// A subset of the configured variants (all when empty).
    pub variants: Vec<String>,
    /// Worker threads (default: one per core).
    pub jobs: Option<usize>,
    /// Reconvert even what the manifest says is unchanged.
    pub force: bool,
}

/// Runs the command; `Err` is a fatal error (exit status 1).
pub fn run(args: &ConvertArgs) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(args.config.as_deref())?;
    let variants = select_variants(&settings.convert, &args.variants)?;
    let input = walk::canonical_input(&args.input)?;
    let out = walk::prepare_output(&args.out, &input)?;
    let started = Instant::now();
    let exclude = out.starts_with(&input).then(|| out.clone());
    let walked = walk::walk(&input, exclude.as_deref())?;

    let limits = settings.convert.limits();
    let reports = Reports::load(settings.reports.clone()).context("report templates (check reports.templates_dir)")?;
    let previous = Manifest::load(&out);
    let batch = Batch {
        out: &out,
        fingerprint: manifest::fingerprint(&variants, &limits),
        report_fingerprint: manifest::report_fingerprint(&reports),
        reports: &reports,
        variants: &variants,
        limits,
        previous: &previous.entries,
        force: args.force,
    };
    let workers = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from)).max(1);
    let progress = Progress::new(walked.files.len());
    let stop = AtomicBool::new(false);
    interrupt::catch();
    let results = run_pool(workers, &walked.files, &stop, |file| {
        let result = batch.convert_one(file);
        match &result {
            Ok((report, _)) => progress.finished(report),
            Err(_) => stop.store(true, Ordering::Relaxed),
        }
        result
    })?;
    progress.finish();
    let interrupted = interrupt::caught();

    let mut reports = walked.not_walked;
    let mut entries = BTreeMap::new();
    let mut fatal = None;
    for (file, result) in walked.files.iter().zip(results) {
        let key = manifest::path_key(&file.relative);
        match result {
            Some(Ok((report, entry))) => {
                reports.push(report);
                if let Some(entry) = entry {
                    entries.insert(key, entry);
                }
            }
            Some(Err(error)) => fatal = fatal.or(Some(error)),
            // Not reached because the run stopped: keep what an earlier run knew.
            None => {
                if let Some(entry) = previous.entries.get(&key) {
                    entries.insert(key, entry.clone());
                }
            }
        }
    }
    // Whatever happened, record what was done, so the next run resumes rather than redoes.
    let saved = Manifest { entries, ..previous }.save(&out);
    if let Some(error) = fatal {
        return Err(error.context("the batch stopped"));
    }
    saved?;
    if interrupted {
        let done = reports.iter().filter(|report| report.outcome != Outcome::Skipped).count();
        eprintln!(
            "interrupted: {done} of {} files done and recorded; run the same command again to convert the rest",
            walked.files.len()
        );
        return Ok(ExitCode::from(INTERRUPTED));
    }
    reports.sort_by(|a, b| a.path.cmp(&b.path));
    let summary = RunSummary {
        command: "convert",
        input: &args.input,
        files: &reports,
        elapsed: started.elapsed(),
        variants: &variants,
    };
    summary.write_files(&out)?;
    print!("{}", summary.table());
    println!("  summary     {}", out.join("summary.html").display());
    Ok(super::exit_code(&reports))
}

/// The exit status of a run stopped by Ctrl-C (128 + SIGINT, as shells report it).
const INTERRUPTED: u8 = 130;

/// Ctrl-C during a batch: the first one lets the files being converted finish and records what was done (so a
/// re-run resumes), a second one ends the process at once.
mod interrupt {
    use std::sync::atomic::{AtomicBool, Ordering};

    static CAUGHT: AtomicBool = AtomicBool::new(false);

    /// Watches for Ctrl-C on a thread of its own for the rest of the process.
    pub(super) fn catch() {
        let watcher = std::thread::Builder::new().name("ctrl-c".to_owned()).spawn(|| {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            runtime.block_on(async {
                if tokio::signal::ctrl_c().await.is_err() {
                    return;
                }
                CAUGHT.store(true, Ordering::SeqCst);
                eprintln!("stopping once the files being converted are done; Ctrl-C again quits at once");
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(i32::from(super::INTERRUPTED));
                }
            });
        });
        if let Err(error) = watcher {
            tracing::warn!(error = %error, "Ctrl-C will end the batch without recording what was done");
        }
    }

    /// Whether Ctrl-C was pressed since [`catch`].
    pub(super) fn caught() -> bool {
        CAUGHT.load(Ordering::SeqCst)
    }
}

/// The variants to make: all configured ones, or the named subset (an unknown name is an error that lists
/// the configured ones).
pub fn select_variants(
    settings: &ConvertSettings,
    requested: &[String],
) -> anyhow::Result<Vec<(VariantName, VariantSpec)>> {
    let names: Vec<&str> = requested.iter().map(|name| name.trim()).filter(|name| !name.is_empty()).collect();
    if names.is_empty() {
        return Ok(settings.all_variants());
    }
    let mut chosen = BTreeMap::new();
    for name in names {
        let found = name.parse::<VariantName>().ok().and_then(|name| settings.variants.get_key_value(&name));
        let Some((name, spec)) = found else {
            let configured: Vec<&str> = settings.variants.keys().map(VariantName::as_str).collect();
            anyhow::bail!("unknown variant {name:?}; configured variants: {}", configured.join(", "));
        };
        chosen.insert(name.clone(), *spec);
    }
    Ok(chosen.into_iter().collect())
}

/// Runs `work` on every file with at most `workers` threads, largest files first; stops handing out files once
/// `stop` is set. Returns one slot per file (in the order of `files`), `None` for files not reached.
///
/// Largest first, because the run ends when its last file does: a large photo taken last would keep one
/// thread busy while the others sit idle, and small files at the end even out the threads' finishing times.
fn run_pool<T: Send>(
    workers: usize,
    files: &[InputFile],
    stop: &AtomicBool,
    work: impl Fn(&InputFile) -> T + Sync,
) -> anyhow::Result<Vec<Option<T>>> {
    let order = largest_first(files);
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<T>>> = files.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        for worker in 0..workers.min(files.len()) {
            std::thread::Builder::new()
                .name(format!("convert-{worker}"))
                .stack_size(8 << 20)
                .spawn_scoped(scope, || {
                    while !stop.load(Ordering::Relaxed) && !interrupt::caught() {
                        let Some(&index) = order.get(next.fetch_add(1, Ordering::Relaxed)) else { break };
                        let Some(file) = files.get(index) else { break };
                        let result = work(file);
                        *slots[index].lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
                    }
                })
                .context("cannot start a worker thread")?;
        }
        Ok(())
    })?;
    Ok(slots.into_iter().map(|slot| slot.into_inner().unwrap_or_else(PoisonError::into_inner)).collect())
}

/// The indices of `files`, largest file first (a file that cannot be looked at counts as empty; reading it
/// will say what is wrong).
fn largest_first(files: &[InputFile]) -> Vec<usize> {
    let sizes: Vec<u64> =
        files.iter().map(|file| std::fs::metadata(&file.absolute).map_or(0, |meta| meta.len())).collect();
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by_key(|&index| std::cmp::Reverse(sizes[index]));
    order
}

/// What every worker shares.
struct Batch<'a> {
    out: &'a Path,
    variants: &'a [(VariantName, VariantSpec)],
    limits: ConvertLimits,
    /// The fingerprint of the settings that shape image outputs.
    fingerprint: String,
    reports: &'a Reports,
    /// The fingerprint of the settings and templates that shape reports.
    report_fingerprint: String,
    previous: &'a BTreeMap<String, Entry>,
    force: bool,
}

impl Batch<'_> {
    /// Converts one file. `Ok` carries its report and the manifest entry to keep (none for skipped files or
    /// failures worth retrying); `Err` is fatal to the batch (outputs cannot be written).
    fn convert_one(&self, file: &InputFile) -> anyhow::Result<(FileReport, Option<Entry>)> {
        let relative = file.relative.clone();
        let unreadable = |error: std::io::Error| {
            let report = FileReport::with_problem(
                relative.clone(),
                Outcome::Rejected,
                0,
                Problem::new("unreadable", format!("cannot read: {error}")),
            );
            Ok((report, None))
        };
        let mut handle = match classify::open_regular(&file.absolute) {
            Ok(handle) => handle,
            Err(error) => return unreadable(error),
        };
        let (size, mtime_ns) = match handle.metadata() {
            Ok(meta) => (meta.len(), manifest::mtime_ns(meta.modified())),
            Err(error) => return unreadable(error),
        };
        let head = match classify::read_head(&mut handle, SNIFF_LEN) {
            Ok(head) => head,
            Err(error) => return unreadable(error),
        };
        let name = relative.file_name().unwrap_or_default();
        let handler = match classify::classify(&head, name) {
            Ok(handler) => handler,
            Err(NotConverted::Skip(problem)) => {
                return Ok((FileReport::with_problem(relative, Outcome::Skipped, size, problem), None));
            }
            Err(NotConverted::Reject(problem)) => {
                return Ok((FileReport::with_problem(relative, Outcome::Rejected, size, problem), None));
            }
        };

        let key = manifest::path_key(&relative);
        let previous = self.previous.get(&key);
        if let Some(entry) = previous.filter(|entry| entry.size == size && entry.mtime_ns == mtime_ns)
            && self.is_reusable(&relative, entry)
        {
            return Ok((reused(relative, entry), Some(entry.clone())));
        }
        if size > MAX_INPUT_BYTES {
            let problem = Problem::new(
                "file_too_large",
                format!("the file is {size} bytes; sluice convert reads at most {MAX_INPUT_BYTES}"),
            );
            let mut report = FileReport::with_problem(relative, Outcome::Rejected, size, problem);
            report.media = Some(handler.media());
            return Ok((report, None));
        }
        let media = handler.media();
        let mut bytes = head;
        if let Err(error) = handle.take(MAX_INPUT_BYTES).read_to_end(&mut bytes) {
            return unreadable(error);
        }
        let size = bytes.len() as u64;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        if let Some(entry) = previous.filter(|entry| entry.sha256 == sha256)
            && self.is_reusable(&relative, entry)
        {
            let entry = Entry { size, mtime_ns, ..entry.clone() };
            return Ok((reused(relative, &entry), Some(entry)));
        }

        let mut report = FileReport {
            media: Some(media),
            sha256: Some(sha256.clone()),
            processed_now: true,
            ..FileReport::new(relative.clone(), Outcome::Rejected, size)
        };
        let mut entry = Entry {
            size,
            mtime_ns,
            sha256,
            settings: self.fingerprint_for(media).to_owned(),
            media,
            dimensions: None,
            outputs: Vec::new(),
            error: None,
        };
        let made = match handler {
            Handler::Image(_) => self.make_variants(&bytes, &mut report),
            Handler::Report(media) => self.make_reports(&bytes, &relative, media),
        };
        drop(bytes);
        entry.dimensions = report.dimensions;
        match made {
            Ok(products) => {
                for product in products {
                    let path = output::output_path(&relative, &product.facts.name, product.facts.media);
                    output::write_atomically(self.out, &path, &product.bytes)?;
                    report.outputs.push(product.facts);
                    report.output_paths.push(path);
                }
                report.outcome = Outcome::Converted;
                entry.outputs.clone_from(&report.outputs);
                Ok((report, Some(entry)))
            }
            Err(Failure { problem, permanent }) => {
                report.problem = Some(problem.clone());
                entry.error = Some(problem);
                Ok((report, permanent.then_some(entry)))
            }
        }
    }

    /// Decodes an image once and encodes every variant, noting its size in `report`.
    fn make_variants(&self, bytes: &[u8], report: &mut FileReport) -> Result<Vec<Product>, Failure> {
        let encoded = probe(bytes, &self.limits)
            .and_then(|info| {
                report.dimensions = Some((info.width, info.height));
                convert_image(bytes, self.variants, &self.limits)
            })
            .map_err(|error| Failure { permanent: error.is_permanent(), problem: describe(&error) })?;
        Ok(encoded
            .into_iter()
            .map(|variant| Product {
                facts: OutputFacts {
                    name: variant.name.to_string(),
                    media: variant.media,
                    width: variant.width,
                    height: variant.height,
                    bytes: variant.bytes.len() as u64,
                },
                bytes: variant.bytes,
            })
            .collect())
    }

    /// Renders a table's PDF and HTML reports, read as the type it was classified as (`media`: CSV or JSON).
    fn make_reports(&self, bytes: &[u8], relative: &Path, media: MediaType) -> Result<Vec<Product>, Failure> {
        let source_name = relative.file_name().map(|name| name.to_string_lossy()).unwrap_or_default();
        let title = relative.file_stem().map(|stem| stem.to_string_lossy()).unwrap_or_default();
        let input = ReportInput {
            title: &title,
            source_name: &source_name,
            kind: TabularKind::from_media(media),
            generated_at: OffsetDateTime::now_utc(),
            data: bytes,
        };
        let rendered = render_report(&input, &self.reports.settings, &self.reports.templates).map_err(|error| {
            Failure { permanent: error.is_permanent(), problem: Problem::new(error.code(), error_chain(&error)) }
        })?;
        let product = |media: MediaType, bytes: Vec<u8>| Product {
            facts: OutputFacts { name: "report".to_owned(), media, width: 0, height: 0, bytes: bytes.len() as u64 },
            bytes,
        };
        Ok(vec![product(MediaType::Pdf, rendered.pdf), product(MediaType::Html, rendered.html.into_bytes())])
    }

    /// The fingerprint results for inputs of this type are made with.
    fn fingerprint_for(&self, media: MediaType) -> &str {
        if media.is_image() { &self.fingerprint } else { &self.report_fingerprint }
    }

    /// Whether an earlier result can stand: same settings, not forced, and every output still in place.
    fn is_reusable(&self, relative: &Path, entry: &Entry) -> bool {
        !self.force
            && entry.settings == self.fingerprint_for(entry.media)
            && entry.outputs.iter().all(|facts| {
                output::is_intact(self.out, &output::output_path(relative, &facts.name, facts.media), facts.bytes)
            })
    }
}

/// One output made from an input, before it is written.
struct Product {
    facts: OutputFacts,
    bytes: Vec<u8>,
}

/// Why an input gave no outputs, and whether the same bytes would always fail (then the manifest keeps it).
struct Failure {
    problem: Problem,
    permanent: bool,
}

/// The report of an input an earlier run handled, unchanged since.
fn reused(relative: PathBuf, entry: &Entry) -> FileReport {
    let output_paths =
        entry.outputs.iter().map(|facts| output::output_path(&relative, &facts.name, facts.media)).collect();
    FileReport {
        path: relative,
        outcome: if entry.error.is_some() { Outcome::Rejected } else { Outcome::Unchanged },
        media: Some(entry.media),
        bytes: entry.size,
        sha256: Some(entry.sha256.clone()),
        dimensions: entry.dimensions,
        outputs: entry.outputs.clone(),
        output_paths,
        output_urls: Vec::new(),
        problem: entry.error.clone(),
        job: None,
        processed_now: false,
    }
}

/// A conversion error as a code and a sentence, with the codec's own report appended (useful locally).
fn describe(error: &ConvertError) -> Problem {
    let message = match std::error::Error::source(error) {
        Some(source) => format!("{error} ({source})"),
        None => error.to_string(),
    };
    Problem::new(error.code(), message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_hands_out_the_largest_files_first_and_answers_in_input_order() {
        let dir = tempfile::tempdir().unwrap();
        let sizes = [10_usize, 3000, 0, 700];
        let mut files: Vec<InputFile> = sizes
            .iter()
            .enumerate()
            .map(|(index, &size)| {
                let absolute = dir.path().join(format!("{index}.bin"));
                std::fs::write(&absolute, vec![0_u8; size]).unwrap();
                InputFile { relative: PathBuf::from(format!("{index}.bin")), absolute }
            })
            .collect();
        files.push(InputFile { relative: PathBuf::from("gone.bin"), absolute: dir.path().join("gone.bin") });
        assert_eq!(largest_first(&files), vec![1, 3, 0, 2, 4]);

        let started = Mutex::new(Vec::new());
        let stop = AtomicBool::new(false);
        let results = run_pool(1, &files, &stop, |file| {
            started.lock().unwrap().push(file.relative.clone());
            file.relative.clone()
        })
        .unwrap();
        let started = started.into_inner().unwrap();
        assert_eq!(started.first(), Some(&PathBuf::from("1.bin")), "{started:?}");
        let answered: Vec<PathBuf> = results.into_iter().map(Option::unwrap).collect();
        let in_order: Vec<PathBuf> = files.iter().map(|file| file.relative.clone()).collect();
        assert_eq!(answered, in_order);
    }
}
