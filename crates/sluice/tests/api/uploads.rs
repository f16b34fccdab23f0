//! Bad uploads get a clear JSON error with a stable code, and leave nothing stored.

use serde_json::Value;

use crate::helpers::{Options, code, files_under, sample, spawn_app, spawn_with};

async fn refused(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    assert_eq!(response.headers()["content-type"], "application/json");
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn form_errors_are_400_with_a_code() {
    let app = spawn_app().await;
    let cases: [(&[(&str, &str)], &str); 6] = [
        (&[("notify", "a@example.com\r\nBcc: victim@example.com")], "invalid_notify"),
        (&[("notify", "a@example.com, b@example.com")], "invalid_notify"),
        (&[("notify", "not-an-address")], "invalid_notify"),
        (&[("variants", "thumb,poster")], "unknown_variant"),
        (&[("variants", "../../etc")], "unknown_variant"),
        (&[("colour", "red")], "unknown_field"),
    ];
    for (fields, expected) in cases {
        let (status, body) = refused(app.upload(&["forest-stream.jpg"], fields).await).await;
        assert_eq!((status, code(&body)), (400, expected), "{fields:?}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().len() > 10);
    }
    let form = reqwest::multipart::Form::new().text("notify", "a@example.com");
    let (status, body) = refused(app.client.post(app.url("/v1/uploads")).multipart(form).send().await.unwrap()).await;
    assert_eq!((status, code(&body)), (400, "missing_file"));

    let response = app.client.post(app.url("/v1/uploads")).body("just text").send().await.unwrap();
    let (status, body) = refused(response).await;
    assert_eq!((status, code(&body)), (415, "expected_multipart"));
    assert!(body["error"]["message"].as_str().unwrap().ends_with("(the request has no Content-Type)"), "{body}");
    let response = app
        .client
        .post(app.url("/v1/uploads"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    let (status, body) = refused(response).await;
    assert_eq!((status, code(&body)), (415, "expected_multipart"));
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.ends_with("(the request's Content-Type is \"application/json\")"), "{body}");

    let response = app
        .client
        .post(app.url("/v1/uploads"))
        .header("content-type", "multipart/form-data; boundary=XYZ")
        .body("--XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n\r\nunterminated")
        .send()
        .await
        .unwrap();
    let (status, body) = refused(response).await;
    assert_eq!((status, code(&body)), (400, "malformed_multipart"), "{body}");

    assert!(files_under(&app.storage().join("originals")).is_empty(), "a refused upload left files behind");
    app.stop().await;
}

#[tokio::test]
async fn unconvertible_files_are_refused_or_rejected() {
    let app = spawn_app().await;
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#.to_vec();
    let (status, body) = refused(app.upload_parts(vec![("logo.svg", svg, Some("image/svg+xml"))]).await).await;
    assert_eq!((status, code(&body)), (415, "unsupported_media_type"), "{body}");

    let (status, body) = refused(app.upload_parts(vec![("photo.jpg", b"hello, I am text".to_vec(), None)]).await).await;
    assert_eq!((status, code(&body)), (415, "unsupported_media_type"));
    assert!(body["error"]["message"].as_str().unwrap().contains("named or declared as an image"), "{body}");

    let (status, body) = refused(app.upload_parts(vec![("empty.png", Vec::new(), None)]).await).await;
    assert_eq!((status, code(&body)), (400, "empty_file"));

    // Every refused file is named, up to five, then how many more.
    let (status, body) = refused(
        app.upload_parts(vec![("z.jpg", Vec::new(), None), ("h.jpg", b"<html><body>hi</body></html>".to_vec(), None)])
            .await,
    )
    .await;
    assert_eq!((status, code(&body)), (415, "unsupported_media_type"));
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("z.jpg: ") && message.contains("; h.jpg: "), "{body}");
    let many: Vec<(String, Vec<u8>)> = (0..7).map(|n| (format!("note-{n}.txt"), b"plain text".to_vec())).collect();
    let (status, body) = refused(
        app.upload_parts(many.iter().map(|(name, bytes)| (name.as_str(), bytes.clone(), None)).collect()).await,
    )
    .await;
    assert_eq!(status, 415);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("note-4.txt: ") && !message.contains("note-5.txt") && message.contains("; and 2 more"),
        "{body}"
    );

    // Mixed: the good file converts, the others are rejected with their reasons.
    let photo = std::fs::read(sample("forest-stream.jpg")).unwrap();
    let truncated = photo[..photo.len() / 3].to_vec();
    let response = app
        .upload_parts(vec![
            ("good.jpg", photo, Some("image/jpeg")),
            ("broken.jpg", truncated, Some("image/jpeg")),
            ("liar.png", b"%PDF-1.7 not an image".to_vec(), Some("image/png")),
            ("notes.txt", b"plain notes".to_vec(), Some("text/plain")),
        ])
        .await;
    assert_eq!(response.status(), 202);
    let id = response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let done = app.wait_settled(&id).await;
    assert_eq!(done["state"], "completed");
    let states: Vec<(&str, &str)> = done["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|file| (file["state"].as_str().unwrap(), file["error"]["code"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        states,
        [
            ("converted", ""),
            ("rejected", "undecodable"),
            ("rejected", "type_mismatch"),
            ("rejected", "unsupported_type")
        ]
    );
    // Only convertible files are kept.
    let originals = files_under(&app.storage().join("originals").join(&id));
    assert_eq!(originals, ["0.jpg", "1.jpg"]);
    app.stop().await;
}

#[tokio::test]
async fn oversized_uploads_get_413_and_leave_nothing() {
    let app = spawn_with(Options {
        tweak: Some(Box::new(|settings| settings.server.max_upload_bytes = 200_000)),
        ..Options::default()
    })
    .await;
    let (status, body) = refused(app.upload(&["forest-stream.jpg"], &[]).await).await;
    assert_eq!((status, code(&body)), (413, "payload_too_large"), "{body}");

    // Within the declared length check but over the limit once counted: a chunked body.
    let bytes = std::fs::read(sample("dragonfly-on-branch.jpg")).unwrap();
    let stream =
        futures::stream::iter(bytes.chunks(64 * 1024).map(|c| Ok::<_, std::io::Error>(c.to_vec())).collect::<Vec<_>>());
    let part = reqwest::multipart::Part::stream(reqwest::Body::wrap_stream(stream)).file_name("big.jpg");
    let form = reqwest::multipart::Form::new().part("file", part);
    let (status, body) = refused(app.client.post(app.url("/v1/uploads")).multipart(form).send().await.unwrap()).await;
    assert_eq!((status, code(&body)), (413, "payload_too_large"), "{body}");

    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(files_under(&app.storage().join("originals")).is_empty());
    assert!(files_under(&app.storage().join("jobs")).is_empty());
    // And the server still serves.
    let (status, _) = app.get_json("/healthz").await;
    assert_eq!(status, 200);
    app.stop().await;
}

#[tokio::test]
async fn hostile_file_names_are_metadata_only() {
    let app = spawn_app().await;
    let photo = std::fs::read(sample("ladybird-pan-animated.gif")).unwrap();
    let long = format!("{}.gif", "n".repeat(1000));
    let names = ["../../../etc/passwd.gif", "<script>alert(1)</script>.gif", "tab\there.gif", long.as_str()];
    let parts = names.iter().map(|name| (*name, photo.clone(), Some("image/gif"))).collect();
    let response = app.upload_parts(parts).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 202, "{body}");
    let shown: Vec<&str> = body["files"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(shown[0], "passwd.gif");
    // A slash makes the name a path: only its last segment is kept.
    assert_eq!(shown[1], "script>.gif");
    assert_eq!(shown[2], "tabhere.gif");
    assert_eq!(shown[3].chars().count(), 255);
    let id = body["id"].as_str().unwrap();
    assert_eq!(files_under(&app.storage().join("originals").join(id)), ["0.gif", "1.gif", "2.gif", "3.gif"]);

    // A control character that breaks the part's header is a malformed form, refused whole.
    let response = app.upload_parts(vec![("bell\u{7}.gif", photo, Some("image/gif"))]).await;
    let (status, body) = refused(response).await;
    assert_eq!((status, code(&body)), (400, "malformed_multipart"), "{body}");
    app.stop().await;
}
