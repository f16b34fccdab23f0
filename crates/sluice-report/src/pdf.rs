//! Typesetting the PDF in-process with typst: a [`World`] made of the template (the main source), the model as
//! a virtual `data.json`, and the fonts embedded in `typst-assets` plus those of the templates folder's
//! `fonts/` (see [`FontSet`]). Nothing is read from disk or the network while rendering; any other path the
//! template asks for is "not found".

use std::sync::{Arc, OnceLock};

use time::OffsetDateTime;
use typst::diag::{FileError, FileResult, SourceDiagnostic};
use typst::foundations::{Bytes, Datetime, Duration};
use typst::syntax::{FileId, RootedPath, Source, VirtualPath, VirtualRoot};
use typst::text::{Font, FontBook};
use typst::utils::LazyHash;
use typst::{Library, LibraryExt, World};
use typst_layout::PagedDocument;
use typst_pdf::PdfOptions;

use crate::error::ReportError;

/// The standard library, built once per process.
fn library() -> &'static LazyHash<Library> {
    static LIBRARY: OnceLock<LazyHash<Library>> = OnceLock::new();
    LIBRARY.get_or_init(|| LazyHash::new(<Library as LibraryExt>::default()))
}

/// The fonts a PDF is typeset with: the embedded ones, then any added (for scripts the embedded fonts lack,
/// such as Chinese, Japanese or Korean), which typst falls back to for characters the first ones do not have.
#[derive(Debug)]
pub(crate) struct FontSet {
    book: LazyHash<FontBook>,
    fonts: Vec<Font>,
    added: usize,
}

impl FontSet {
    /// The embedded fonts, parsed once per process.
    pub(crate) fn embedded() -> Arc<Self> {
        static EMBEDDED: OnceLock<Arc<FontSet>> = OnceLock::new();
        Arc::clone(EMBEDDED.get_or_init(|| Arc::new(Self::with(Vec::new()))))
    }

    /// The embedded fonts followed by the fonts in `files` (each file's bytes: TrueType, OpenType or a
    /// collection); `None` when one of them holds no font.
    pub(crate) fn with_files(files: Vec<Vec<u8>>) -> Option<Arc<Self>> {
        let mut added = Vec::new();
        for data in files {
            let before = added.len();
            added.extend(Font::iter(Bytes::new(data)));
            if added.len() == before {
                return None;
            }
        }
        Some(Arc::new(Self::with(added)))
    }

    fn with(added: Vec<Font>) -> Self {
        let count = added.len();
        let fonts: Vec<Font> =
            typst_assets::fonts().flat_map(|data| Font::iter(Bytes::new(data))).chain(added).collect();
        Self { book: LazyHash::new(FontBook::from_fonts(&fonts)), fonts, added: count }
    }

    /// How many fonts were added to the embedded ones.
    pub(crate) fn added(&self) -> usize {
        self.added
    }
}

fn project_file(path: &str) -> Option<FileId> {
    VirtualPath::new(path).ok().map(|vpath| RootedPath::new(VirtualRoot::Project, vpath).intern())
}

struct ReportWorld<'a> {
    fonts: &'a FontSet,
    main: Source,
    data_id: Option<FileId>,
    data: Bytes,
    today: OffsetDateTime,
}

impl World for ReportWorld<'_> {
    fn library(&self) -> &LazyHash<Library> {
        library()
    }

    fn book(&self) -> &LazyHash<FontBook> {
        &self.fonts.book
    }

    fn main(&self) -> FileId {
        self.main.id()
    }

    fn source(&self, id: FileId) -> FileResult<Source> {
        if id == self.main.id() { Ok(self.main.clone()) } else { Err(not_found(id)) }
    }

    fn file(&self, id: FileId) -> FileResult<Bytes> {
        if Some(id) == self.data_id { Ok(self.data.clone()) } else { Err(not_found(id)) }
    }

    fn font(&self, index: usize) -> Option<Font> {
        self.fonts.fonts.get(index).cloned()
    }

    fn today(&self, offset: Option<Duration>) -> Option<Datetime> {
        let hours = offset.map_or(0, |duration| (duration.seconds() / 3600.0).round() as i64);
        let moment = self.today.checked_add(time::Duration::hours(hours))?;
        Datetime::from_ymd(moment.year(), u8::from(moment.month()), moment.day())
    }
}

fn not_found(id: FileId) -> FileError {
    FileError::NotFound(id.get().vpath().get_without_slash().into())
}

fn describe(diagnostics: &[SourceDiagnostic]) -> String {
    let messages: Vec<String> = diagnostics.iter().take(3).map(|d| d.message.to_string()).collect();
    if messages.is_empty() { "unknown error".to_owned() } else { messages.join("; ") }
}

/// Compiles `template` with `data` served as `data.json` and `fonts`, and exports the PDF.
pub(crate) fn render(
    template: &str,
    fonts: &FontSet,
    data: Vec<u8>,
    today: OffsetDateTime,
) -> Result<Vec<u8>, ReportError> {
    let main_id =
        project_file("report.typ").ok_or_else(|| ReportError::RenderFailed { message: "bad main path".to_owned() })?;
    let world = ReportWorld {
        fonts,
        main: Source::new(main_id, template.to_owned()),
        data_id: project_file("data.json"),
        data: Bytes::new(data),
        today,
    };
    let result = typst::compile::<PagedDocument>(&world).output;
    let document = result.map_err(|errors| ReportError::RenderFailed { message: describe(&errors) })?;
    let pdf = typst_pdf::pdf(&document, &PdfOptions::default())
        .map_err(|errors| ReportError::RenderFailed { message: describe(&errors) });
    typst::comemo::evict(4);
    pdf
}
