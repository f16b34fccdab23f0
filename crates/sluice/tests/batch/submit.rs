use std::path::Path;
use std::time::Duration;

use sluice::{Server, Settings};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::helpers::{CONFIG, copy_sample, decoded_size, files_by_path, read_json, run_sluice};

/// A real server on 127.0.0.1 with temp storage, an .eml outbox and the tests' two variants.
struct TestServer {
    base: String,
    dir: tempfile::TempDir,
    stop: CancellationToken,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start_server() -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let mut settings = Settings::load(Some(&config)).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    settings.server.listen = address;
    settings.server.public_url = format!("http://{address}");
    settings.storage.url = dir.path().join("storage").display().to_string();
    settings.mail.url = format!("file://{}", dir.path().join("outbox").display()).parse().unwrap();
    settings.pipeline.retry_base_ms = 50;
    settings.pipeline.retry_max_ms = 200;
    settings.pipeline.shutdown_grace_secs = 5;
    let server = Server::build_with_listener(settings, listener).await.unwrap();
    let stop = CancellationToken::new();
    let token = stop.clone();
    let handle = tokio::spawn(server.run_until(async move { token.cancelled().await }));
    TestServer { base: format!("http://{address}"), dir, stop, handle }
}

impl TestServer {
    async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(20), self.handle).await.unwrap().unwrap().unwrap();
    }
}

async fn submit(args: Vec<String>) -> crate::helpers::Run {
    tokio::task::spawn_blocking(move || run_sluice(&args)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submits_a_folder_follows_the_jobs_and_downloads_outputs() {
    let server = start_server().await;
    let work = tempfile::tempdir().unwrap();
    let input = work.path().join("in");
    copy_sample("ladybird-pan-animated.gif", &input.join("a.gif"));
    copy_sample("fig-bowl-vignette-alpha.png", &input.join("sub/bowl.png"));
    copy_sample("sales.csv", &input.join("sales.csv"));
    let jpeg = std::fs::read(crate::helpers::sample("paint-brushes-cmyk.jpg")).unwrap();
    std::fs::write(input.join("sub/broken.jpg"), &jpeg[..jpeg.len() / 3]).unwrap();
    let out = work.path().join("out");

    let run = submit(vec![
        "submit".into(),
        input.display().to_string(),
        "--server".into(),
        server.base.clone(),
        "--notify".into(),
        "someone@example.com".into(),
        "--out".into(),
        out.display().to_string(),
        "--concurrency".into(),
        "2".into(),
    ])
    .await;
    assert_eq!(run.code(), 2, "{}", run.describe());
    let stdout = run.stdout();
    assert!(stdout.contains("converted") && stdout.contains("sub/broken.jpg"), "{stdout}");

    let summary = read_json(&out.join("summary.json"));
    assert_eq!(summary["command"], "submit");
    assert_eq!(summary["totals"]["converted"], 3, "{summary:#}");
    assert_eq!(summary["totals"]["rejected"], 1, "{summary:#}");
    assert_eq!(summary["totals"]["skipped"], 0, "{summary:#}");
    let files = files_by_path(&summary);
    assert_eq!(files["sub/broken.jpg"]["error"]["code"], "undecodable", "{:#}", files["sub/broken.jpg"]);
    assert_eq!(files["sales.csv"]["state"], "converted", "{:#}", files["sales.csv"]);
    assert!(std::fs::read(out.join("sales.csv.report.pdf")).unwrap().starts_with(b"%PDF-"), "report downloaded");
    assert!(std::fs::read_to_string(out.join("sales.csv.report.html")).unwrap().contains("345,467.70"));
    let gif = &files["a.gif"];
    assert_eq!(gif["state"], "converted");
    assert!(gif["job"].as_str().is_some_and(|job| !job.is_empty()));
    let outputs = gif["outputs"].as_array().unwrap();
    assert_eq!(outputs.len(), 2);
    assert!(outputs.iter().all(|output| output["url"].as_str().unwrap().starts_with(&server.base)));
    assert_eq!(decoded_size(&out.join("a.gif.small.webp")), (128, 128));
    assert_eq!(decoded_size(&out.join("a.gif.big.jpg")), (480, 300));
    let bowl = decoded_size(&out.join("sub/bowl.png.big.jpg"));
    assert!(bowl.0 == 512 && bowl.1.abs_diff(346) <= 1, "{bowl:?}");
    assert!(std::fs::read_to_string(out.join("summary.html")).unwrap().contains("src=\"a.gif.small.webp\""));

    // Every job was settled, notice included, before the command ended.
    let outbox = server.dir.path().join("outbox");
    let notices = std::fs::read_dir(&outbox).map(|entries| entries.count()).unwrap_or(0);
    assert!(notices >= 2, "expected a notice per converted job in {}", outbox.display());

    // Without --out nothing is written locally; a variant subset is passed on.
    let run = submit(vec![
        "submit".into(),
        input.join("sub").display().to_string(),
        "--server".into(),
        server.base.clone(),
        "--variants".into(),
        "small".into(),
    ])
    .await;
    assert_eq!(run.code(), 2, "{}", run.describe());
    assert!(!input.join("sub/summary.json").exists());

    // A variant the server does not have stops the run.
    let run = submit(vec![
        "submit".into(),
        input.display().to_string(),
        "--server".into(),
        server.base.clone(),
        "--variants".into(),
        "huge".into(),
    ])
    .await;
    assert_eq!(run.code(), 1, "{}", run.describe());
    assert!(run.stderr().contains("unknown_variant"), "{}", run.stderr());

    server.stop().await;
}

#[tokio::test]
async fn an_unreachable_server_exits_1() {
    // Bind a port, then free it: nothing listens there any more.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let work = tempfile::tempdir().unwrap();
    copy_sample("ladybird-pan-animated.gif", &work.path().join("a.gif"));
    let run = submit(vec![
        "submit".into(),
        work.path().display().to_string(),
        "--server".into(),
        format!("http://{address}"),
    ])
    .await;
    assert_eq!(run.code(), 1, "{}", run.describe());
    assert!(run.stderr().contains("cannot reach"), "{}", run.stderr());
    assert!(!Path::new(&work.path().join("summary.json")).exists());
}
