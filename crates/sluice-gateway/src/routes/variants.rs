//! `GET /v1/variants`: the configured variants, so clients (the web page among them) can offer a choice.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use sluice_core::{Fit, OutputFormat};
use utoipa::ToSchema;

use crate::AppState;

/// The variants an upload may ask for (`variants` field of `POST /v1/uploads`).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VariantList {
    /// Every configured variant, in name order; an upload without `variants` gets all of them.
    pub variants: Vec<VariantDocument>,
}

/// One configured variant.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VariantDocument {
    /// Its name, as used in the upload's `variants` field and in output names.
    #[schema(example = "thumb")]
    pub name: String,
    /// Box width in pixels.
    pub width: u32,
    /// Box height in pixels.
    pub height: u32,
    /// How the image is fitted into the box: `cover`, `contain` or `fill`.
    #[schema(value_type = String, example = "cover")]
    pub fit: Fit,
    /// Output encoding: `jpeg`, `png`, `webp` or `same` (the input's own).
    #[schema(value_type = String, example = "webp")]
    pub format: OutputFormat,
    /// Encoder quality, 1 to 100 (ignored for PNG).
    pub quality: u8,
}

/// The configured variants.
#[utoipa::path(get, path = "/v1/variants", tag = "uploads",
    responses((status = 200, description = "The variants an upload may ask for", body = VariantList)))]
pub(crate) async fn list_variants(State(app): State<AppState>) -> Json<VariantList> {
    let variants = app
        .pipeline
        .convert_settings()
        .variants
        .iter()
        .map(|(name, spec)| VariantDocument {
            name: name.to_string(),
            width: spec.width,
            height: spec.height,
            fit: spec.fit,
            format: spec.format,
            quality: spec.quality,
        })
        .collect();
    Json(VariantList { variants })
}
