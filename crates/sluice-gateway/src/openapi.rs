use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{
    __path_create_upload, __path_get_file, __path_get_job, __path_healthz, __path_job_events, __path_list_jobs,
    __path_list_variants, __path_metrics, __path_readyz, UploadForm, VariantList,
};

/// The OpenAPI 3 document of the v1 API, served at `/openapi.json` and browsed at `/docs`.
#[derive(OpenApi)]
#[openapi(
    info(title = "sluice", description = "Asynchronous upload-and-conversion pipeline: upload files, get 202 Accepted with a job, follow it, download the outputs."),
    paths(create_upload, list_variants, get_job, list_jobs, job_events, get_file, healthz, readyz, metrics),
    modifiers(&BearerScheme),
    components(schemas(UploadForm, VariantList, crate::JobDocument, crate::JobList, crate::error::ErrorBody, sluice_core::Problem)),
    tags(
        (name = "uploads", description = "Send files"),
        (name = "jobs", description = "Follow jobs"),
        (name = "files", description = "Download originals and outputs"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
pub struct ApiDoc;

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
