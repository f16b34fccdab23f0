//! The web page at `/` and the variants route it reads.

use crate::helpers::{Options, code, spawn_app, spawn_with};

#[tokio::test]
async fn the_page_and_its_assets_are_served_with_a_strict_policy() {
    let app = spawn_app().await;
    for (path, media) in [
        ("/", "text/html"),
        ("/assets/app.js", "text/javascript"),
        ("/assets/app.css", "text/css"),
        ("/assets/icon.svg", "image/svg+xml"),
    ] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers().clone();
        let content_type = headers["content-type"].to_str().unwrap();
        assert!(content_type.starts_with(media), "{path}: {content_type}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert!(policy.starts_with("default-src 'self'"), "{path}: {policy}");
        assert!(!policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"), "{path}: {policy}");
        let etag = headers["etag"].to_str().unwrap().to_owned();
        assert!(etag.starts_with('"') && etag.len() > 10, "{path}: {etag}");
        let body = response.bytes().await.unwrap();
        assert!(!body.is_empty(), "{path}");

        // The validator: the same ETag gives 304 without a body; another one gives the asset.
        let again = app.client.get(app.url(path)).header("if-none-match", &etag).send().await.unwrap();
        assert_eq!(again.status(), 304, "{path}");
        assert_eq!(again.headers()["etag"].to_str().unwrap(), etag, "{path}");
        assert!(again.bytes().await.unwrap().is_empty(), "{path}");
        let other = app.client.get(app.url(path)).header("if-none-match", "\"stale\"").send().await.unwrap();
        assert_eq!(other.status(), 200, "{path}");
    }

    // The page loads only its own files: no inline script or style, nothing from elsewhere.
    let page = app.client.get(app.url("/")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(r#"<script src="/assets/app.js" defer></script>"#), "{page}");
    assert!(!page.contains("<style") && !page.contains(" style="), "no inline style");
    assert!(!page.contains("http://") && !page.contains("https://"), "no external resource");

    let (status, body) = app.get_json("/assets/nothing.js").await;
    assert_eq!((status, code(&body)), (404, "not_found"));
    app.stop().await;
}

#[tokio::test]
async fn variants_lists_the_configured_variants_in_name_order() {
    let app = spawn_app().await;
    let (status, body) = app.get_json("/v1/variants").await;
    assert_eq!(status, 200, "{body}");
    let names: Vec<&str> = body["variants"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["large", "medium", "thumb"]);
    let thumb = &body["variants"][2];
    assert_eq!(
        (&thumb["width"], &thumb["height"], &thumb["fit"], &thumb["format"], &thumb["quality"]),
        (&256.into(), &256.into(), &"cover".into(), &"webp".into(), &80.into())
    );

    let (_, spec) = app.get_json("/openapi.json").await;
    assert!(spec["paths"]["/v1/variants"]["get"].is_object(), "/v1/variants missing from the OpenAPI document");
    assert!(spec["components"]["schemas"]["VariantList"].is_object());
    app.stop().await;
}

#[tokio::test]
async fn variants_follows_the_configuration() {
    let app = spawn_with(Options {
        tweak: Some(Box::new(|settings| {
            settings.convert.variants.retain(|name, _| name.as_str() == "medium");
        })),
        ..Options::default()
    })
    .await;
    let (status, body) = app.get_json("/v1/variants").await;
    assert_eq!(status, 200, "{body}");
    let names: Vec<&str> = body["variants"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["medium"]);
    app.stop().await;
}
