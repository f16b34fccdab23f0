use sluice_core::VariantName;
use utoipa::openapi::schema::{AdditionalProperties, Schema};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, RefOr};
use utoipa::{Modify, OpenApi};

use crate::routes::{
    __path_create_upload, __path_get_file, __path_get_job, __path_healthz, __path_job_events, __path_list_jobs,
    __path_list_variants, __path_metrics, __path_readyz, JobEventMessage, UploadForm, VariantList,
};

/// The OpenAPI 3 document of the v1 API, served at `/openapi.json` and browsed at `/docs`.
#[derive(OpenApi)]
#[openapi(
    info(title = "sluice", description = "Asynchronous upload-and-conversion pipeline: upload files, get 202 Accepted with a job, follow it, download the outputs."),
    paths(create_upload, list_variants, get_job, list_jobs, job_events, get_file, healthz, readyz, metrics),
    modifiers(&BearerScheme),
    components(schemas(UploadForm, VariantList, JobEventMessage, crate::JobDocument, crate::JobList, crate::error::ErrorBody, sluice_core::Problem)),
    tags(
        (name = "uploads", description = "Send files"),
        (name = "jobs", description = "Follow jobs"),
        (name = "files", description = "Download originals and outputs"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
pub struct ApiDoc;

impl ApiDoc {
    /// The document as this server answers it: the upload form's `variants` field admits only the configured
    /// names, `callback_url` is left out when webhooks are off, and the form's limits and closed set of fields
    /// are stated. Generated clients and API fuzzers then send what this server accepts.
    pub fn for_server<'a>(variants: impl IntoIterator<Item = &'a VariantName>, webhooks_enabled: bool) -> Document {
        let mut document = Self::openapi();
        describe_job_ids(&mut document);
        let form = document.components.as_mut().and_then(|components| components.schemas.get_mut("UploadForm"));
        let Some(RefOr::T(Schema::Object(form))) = form else {
            return document;
        };
        // The handler refuses fields it does not know.
        form.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
        if let Some(RefOr::T(Schema::Array(files))) = form.properties.get_mut("file") {
            files.max_items = Some(crate::routes::MAX_FILES);
        }
        if webhooks_enabled {
            if let Some(RefOr::T(Schema::Object(callback))) = form.properties.get_mut("callback_url") {
                // A pattern rather than `format: uri`: a blank field means no callback.
                callback.pattern = Some("^\\s*$|^\\s*[hH][tT][tT][pP][sS]?://[^/?#\\s]".to_owned());
            }
        } else {
            form.properties.remove("callback_url");
        }
        if let Some(RefOr::T(Schema::Object(names))) = form.properties.get_mut("variants") {
            names.pattern = Some(variant_list_pattern(variants));
        }
        for field in ["notify", "variants", "callback_url"] {
            if let Some(RefOr::T(Schema::Object(text))) = form.properties.get_mut(field) {
                text.max_length = Some(crate::routes::MAX_TEXT_FIELD);
            }
        }
        document
    }
}

/// A job id as the server hands them out: a UUID v7 in its hyphenated form.
const JOB_ID_PATTERN: &str = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-7[0-9a-fA-F]{3}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

/// Gives the job id parameters (`{id}`, and the list's `cursor`, which may be empty) their pattern.
fn describe_job_ids(document: &mut Document) {
    for (path, item) in &mut document.paths.paths {
        let Some(operation) = item.get.as_mut() else { continue };
        for parameter in operation.parameters.iter_mut().flatten() {
            let RefOr::T(parameter) = parameter else { continue };
            let pattern = match parameter.name.as_str() {
                "id" if path.starts_with("/v1/jobs/") => JOB_ID_PATTERN.to_owned(),
                "cursor" if path == "/v1/jobs" => format!("^$|{JOB_ID_PATTERN}"),
                _ => continue,
            };
            if let Some(RefOr::T(Schema::Object(schema))) = parameter.schema.as_mut() {
                schema.pattern = Some(pattern);
            }
        }
    }
}

/// A pattern for a comma-separated list of `names` as the upload handler reads it: blank entries and the
/// spaces around names are ignored. Variant names hold no character that a pattern gives a meaning.
fn variant_list_pattern<'a>(names: impl IntoIterator<Item = &'a VariantName>) -> String {
    let name = names.into_iter().map(VariantName::as_str).collect::<Vec<_>>().join("|");
    format!("^\\s*(?:{name})?\\s*(?:,\\s*(?:{name})?\\s*)*$")
}

/// Adds the `bearer` security scheme that the protected operations name (`server.api_tokens`).
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "One of server.api_tokens, when set (the API is open otherwise). Reads also accept the signed \
                 links (`?expires=..&sig=..`) of job documents and e-mails instead.",
            ))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}
