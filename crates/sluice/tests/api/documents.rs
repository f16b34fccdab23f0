//! Job documents, listings, unknown ids, and the operational routes.

use serde_json::Value;

use crate::helpers::{code, spawn_app};

#[tokio::test]
async fn unknown_jobs_and_routes_are_json_404s() {
    let app = spawn_app().await;
    for path in [
        "/v1/jobs/01938c4e-7f1a-7cc0-a5b2-3d4e5f607182",
        "/v1/jobs/not-an-id",
        "/v1/jobs/01938c4e-7f1a-7cc0-a5b2-3d4e5f607182/events",
    ] {
        let (status, body) = app.get_json(path).await;
        assert_eq!((status, code(&body)), (404, "job_not_found"), "{path}");
    }
    let (status, body) = app.get_json("/v1/nothing-here").await;
    assert_eq!((status, code(&body)), (404, "not_found"));
    // A path parameter that is not UTF-8 once decoded names nothing: a JSON 404, not a plain-text rejection.
    for path in ["/v1/jobs/%FF", "/v1/jobs/%C0%AF/events", "/v1/files/outputs/%FF/0/large.jpg", "/assets/%FF"] {
        let (status, body) = app.get_json(path).await;
        assert_eq!((status, code(&body)), (404, "not_found"), "{path}: {body}");
    }
    let response = app.client.delete(app.url("/v1/uploads")).send().await.unwrap();
    assert_eq!(response.status(), 405);
    app.stop().await;
}

#[tokio::test]
async fn jobs_are_listed_newest_first_with_pages() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let response = app.upload(&["ladybird-pan-animated.gif"], &[("variants", "thumb")]).await;
        ids.push(response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned());
    }
    let (status, page) = app.get_json("/v1/jobs?limit=2").await;
    assert_eq!(status, 200);
    let listed: Vec<&str> = page["jobs"].as_array().unwrap().iter().map(|job| job["id"].as_str().unwrap()).collect();
    assert_eq!(listed, [ids[2].as_str(), ids[1].as_str()]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, next) = app.get_json(&format!("/v1/jobs?limit=2&cursor={cursor}")).await;
    let listed: Vec<&str> = next["jobs"].as_array().unwrap().iter().map(|job| job["id"].as_str().unwrap()).collect();
    assert_eq!(listed, [ids[0].as_str()]);
    assert!(next.get("next_cursor").is_none());

    for id in &ids {
        app.wait_settled(id).await;
    }
    let (_, completed) = app.get_json("/v1/jobs?state=completed").await;
    assert_eq!(completed["jobs"].as_array().unwrap().len(), 3);
    let (_, queued) = app.get_json("/v1/jobs?state=queued").await;
    assert_eq!(queued["jobs"].as_array().unwrap().len(), 0);

    let bad = ["limit=0", "limit=1000", "limit=-1", "limit=1&limit=2", "state=lost", "cursor=x"];
    for query in bad {
        let (status, body) = app.get_json(&format!("/v1/jobs?{query}")).await;
        assert_eq!((status, code(&body)), (400, "invalid_query"), "{query}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(!message.contains("deserialize"), "{query}: {message}");
    }
    // Other parameters are ignored, as on every route (a cache-buster, say).
    let (status, body) = app.get_json("/v1/jobs?_=1732700000&limit=2").await;
    assert_eq!((status, body["jobs"].as_array().map(Vec::len)), (200, Some(2)), "{body}");
    app.stop().await;
}

/// The OpenAPI document says what the server accepts, so clients generated from it and API fuzzers
/// reading it send valid requests: every parameter is where the handler reads it, and the upload form is
/// the one this server takes.
#[tokio::test]
async fn the_openapi_document_describes_what_the_server_accepts() {
    let app = spawn_app().await;
    let (status, spec) = app.get_json("/openapi.json").await;
    assert_eq!(status, 200);
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let name = parameter["name"].as_str().unwrap();
                let in_template = path.contains(&format!("{{{name}}}"));
                assert_eq!(parameter["in"] == "path", in_template, "{method} {path}: parameter {parameter:#}");
            }
        }
    }
    let list = spec["paths"]["/v1/jobs"]["get"]["parameters"].as_array().unwrap();
    assert!(list.iter().all(|parameter| parameter["in"] == "query" && parameter["required"] == false), "{list:?}");

    let form = &spec["components"]["schemas"]["UploadForm"];
    assert_eq!(form["additionalProperties"], false, "{form:#}");
    assert_eq!(
        (form["properties"]["file"]["minItems"].as_u64(), form["properties"]["file"]["maxItems"].as_u64()),
        (Some(1), Some(100))
    );
    let variants = &form["properties"]["variants"];
    assert_eq!(variants["type"], "string", "multipart has no null: {variants:#}");
    let pattern = regex::Regex::new(variants["pattern"].as_str().unwrap()).unwrap();
    for accepted in ["thumb", " thumb , medium", "large,,thumb", ""] {
        assert!(pattern.is_match(accepted), "{accepted:?} against {pattern}");
    }
    for refused in ["null", "thumb,nope", "thumbnail", "thumb medium"] {
        assert!(!pattern.is_match(refused), "{refused:?} against {pattern}");
    }
    assert!(form["properties"].get("callback_url").is_none(), "webhooks are off: {form:#}");

    let events = &spec["paths"]["/v1/jobs/{id}/events"]["get"]["responses"]["200"]["content"]["text/event-stream"];
    assert_eq!(events["schema"]["$ref"], "#/components/schemas/JobEventMessage", "{events:#}");
    let kinds = &spec["components"]["schemas"]["JobEventKind"]["enum"];
    assert!(kinds.as_array().unwrap().contains(&Value::from("snapshot")), "{kinds:#}");

    // The patterns hold for what the server hands out.
    let job = app.upload(&["ladybird-pan-animated.gif"], &[("variants", "thumb")]).await.json::<Value>().await.unwrap();
    let id = job["id"].as_str().unwrap();
    let id_pattern = &spec["paths"]["/v1/jobs/{id}"]["get"]["parameters"][0]["schema"]["pattern"];
    let id_pattern = regex::Regex::new(id_pattern.as_str().unwrap()).unwrap();
    assert!(id_pattern.is_match(id) && !id_pattern.is_match(&id[1..]), "{id} against {id_pattern}");
    let cursor = list.iter().find(|parameter| parameter["name"] == "cursor").unwrap();
    let cursor_pattern = regex::Regex::new(cursor["schema"]["pattern"].as_str().unwrap()).unwrap();
    assert!(cursor_pattern.is_match(id) && cursor_pattern.is_match("") && !cursor_pattern.is_match("x"));
    app.stop().await;
}

#[tokio::test]
async fn operational_routes_answer() {
    let app = spawn_app().await;
    let (status, health) = app.get_json("/healthz").await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
    let (status, ready) = app.get_json("/readyz").await;
    assert_eq!((status, ready["status"].as_str()), (200, Some("ok")), "{ready}");

    let (status, spec) = app.get_json("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    for path in ["/v1/uploads", "/v1/jobs", "/v1/jobs/{id}", "/v1/jobs/{id}/events", "/v1/files/{key}"] {
        assert!(spec["paths"].get(path).is_some(), "{path} missing from the OpenAPI document");
    }
    let docs = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("swagger"), "the docs page is Swagger UI");

    app.upload(&["ladybird-pan-animated.gif"], &[("variants", "thumb")]).await;
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert!(metrics.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = metrics.text().await.unwrap();
    assert!(text.contains("sluice_uploads_total{outcome=\"accepted\"} 1"), "{text}");
    assert!(text.contains("# TYPE sluice_conversion_seconds histogram"));
    app.stop().await;
}
