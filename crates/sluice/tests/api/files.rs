//! Serving stored files: types, ranges, validators, and nothing outside the data prefixes.

use serde_json::Value;

use crate::helpers::{code, spawn_app};

#[tokio::test]
async fn files_are_served_with_ranges_and_validators() {
    let app = spawn_app().await;
    let response = app.upload(&["portrait-wine-and-drum.jpg"], &[("variants", "medium")]).await;
    let id = response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let done = app.wait_settled(&id).await;
    let url = app.url(done["files"][0]["outputs"][0]["url"].as_str().unwrap());
    let size = done["files"][0]["outputs"][0]["bytes"].as_u64().unwrap();

    let whole = app.client.get(&url).send().await.unwrap();
    assert_eq!(whole.status(), 200);
    let headers = whole.headers().clone();
    assert_eq!(headers["content-type"], "image/jpeg");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["content-length"], size.to_string().as_str());
    assert!(headers["content-disposition"].to_str().unwrap().starts_with("inline; filename=\"outputs-"));
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let bytes = whole.bytes().await.unwrap();
    assert_eq!(&bytes[..3], &[0xFF, 0xD8, 0xFF]);

    let partial = app.client.get(&url).header("range", "bytes=0-9").send().await.unwrap();
    assert_eq!(partial.status(), 206);
    assert_eq!(partial.headers()["content-range"], format!("bytes 0-9/{size}").as_str());
    assert_eq!(partial.bytes().await.unwrap(), bytes.slice(0..10));

    let tail = app.client.get(&url).header("range", "bytes=-4").send().await.unwrap();
    assert_eq!(tail.bytes().await.unwrap(), bytes.slice(bytes.len() - 4..));

    let beyond = app.client.get(&url).header("range", format!("bytes={size}-")).send().await.unwrap();
    assert_eq!(beyond.status(), 416);

    let cached = app.client.get(&url).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(cached.status(), 304);
    // If-None-Match compares weakly: the weak form of the same tag is the same version.
    let weak = app.client.get(&url).header("if-none-match", format!("W/{etag}")).send().await.unwrap();
    assert_eq!(weak.status(), 304);

    // An invalid range is ignored: the whole file.
    let backwards = app.client.get(&url).header("range", "bytes=5-1").send().await.unwrap();
    assert_eq!((backwards.status().as_u16(), backwards.bytes().await.unwrap()), (200, bytes.clone()));
    // If-Range: a range of the version the client holds, else the whole file.
    let resumed = app.client.get(&url).header("range", "bytes=0-9").header("if-range", &etag).send().await.unwrap();
    assert_eq!(resumed.status(), 206);
    for stale in ["\"stale\"", &format!("W/{etag}"), "Wed, 21 Oct 2015 07:28:00 GMT"] {
        let response =
            app.client.get(&url).header("range", "bytes=0-9").header("if-range", stale).send().await.unwrap();
        assert_eq!((response.status().as_u16(), response.bytes().await.unwrap()), (200, bytes.clone()), "{stale}");
    }
    // If-Match: the file only if it is the version named.
    let matching = app.client.get(&url).header("if-match", &etag).send().await.unwrap();
    assert_eq!(matching.status(), 200);
    let other = app.client.get(&url).header("if-match", "\"nope\"").send().await.unwrap();
    assert_eq!(other.status(), 412);
    assert_eq!(code(&other.json::<Value>().await.unwrap()), "precondition_failed");

    let original = app.client.get(app.url(&format!("/v1/files/originals/{id}/0.jpg"))).send().await.unwrap();
    assert_eq!(original.status(), 200);

    for path in [
        format!("/v1/files/jobs/{id}.json"),
        format!("/v1/files/outputs/{id}/../../jobs/{id}.json"),
        format!("/v1/files/outputs/{id}/0/missing.jpg"),
        "/v1/files/outputs/not-a-job/0/medium.jpg".to_owned(),
    ] {
        let (status, body) = app.get_json(&path).await;
        assert_eq!((status, code(&body)), (404, "file_not_found"), "{path}");
    }
    let (status, _) = app.get_json("/v1/files/%2e%2e/%2e%2e/etc/passwd").await;
    assert_eq!(status, 404);
    app.stop().await;
}
