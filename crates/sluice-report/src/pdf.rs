//! Typesetting the PDF in-process with typst: a [`World`] made of the template (the main source), the model as
//! a virtual `data.json`, and the fonts embedded in `typst-assets`. Nothing is read from disk or the network;
//! any other path the template asks for is "not found".

use std::sync::OnceLock;

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

/// The library and fonts, built once per process.
struct Shared {
    library: LazyHash<Library>,
    book: LazyHash<FontBook>,
    fonts: Vec<Font>,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let fonts: Vec<Font> = typst_assets::fonts().flat_map(|data| Font::iter(Bytes::new(data))).collect();
        Shared {
            library: LazyHash::new(<Library as LibraryExt>::default()),
            book: LazyHash::new(FontBook::from_fonts(&fonts)),
            fonts,
        }
    })
}

fn project_file(path: &str) -> Option<FileId> {
    VirtualPath::new(path).ok().map(|vpath| RootedPath::new(VirtualRoot::Project, vpath).intern())
}

struct ReportWorld {
    main: Source,
    data_id: Option<FileId>,
    data: Bytes,
    today: OffsetDateTime,
}

impl World for ReportWorld {
    fn library(&self) -> &LazyHash<Library> {
        &shared().library
    }

    fn book(&self) -> &LazyHash<FontBook> {
        &shared().book
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
        shared().fonts.get(index).cloned()
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

/// Compiles `template` with `data` served as `data.json`, and exports the PDF.
pub(crate) fn render(template: &str, data: Vec<u8>, today: OffsetDateTime) -> Result<Vec<u8>, ReportError> {
    let main_id =
        project_file("report.typ").ok_or_else(|| ReportError::RenderFailed { message: "bad main path".to_owned() })?;
    let world = ReportWorld {
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
