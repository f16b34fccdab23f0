//! The in-process S3 server speaks real S3 to object_store's client and checks signatures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions};
use sluice_testkit::S3Server;

fn client(server: &S3Server, secret_key: &str) -> AmazonS3 {
    AmazonS3Builder::new()
        .with_endpoint(server.endpoint())
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .with_bucket_name(server.bucket())
        .with_region(server.region())
        .with_access_key_id(server.access_key())
        .with_secret_access_key(secret_key)
        .build()
        .unwrap()
}

#[tokio::test]
async fn put_get_and_conditional_put() {
    let server = S3Server::start().await.unwrap();
    let store = client(&server, server.secret_key());
    let path = Path::from("outputs/job/0/thumb.webp");
    store.put(&path, b"hello s3".to_vec().into()).await.unwrap();

    let bytes = store.get(&path).await.unwrap().bytes().await.unwrap();
    assert_eq!(&bytes[..], b"hello s3");
    let on_disk = std::fs::read(server.data_dir().join(server.bucket()).join("outputs/job/0/thumb.webp")).unwrap();
    assert_eq!(on_disk, b"hello s3");

    let create = PutOptions { mode: PutMode::Create, ..PutOptions::default() };
    let again = store.put_opts(&path, b"other".to_vec().into(), create).await;
    assert!(matches!(again, Err(object_store::Error::AlreadyExists { .. })), "{again:?}");
}

#[tokio::test]
async fn a_wrong_secret_key_is_refused() {
    let server = S3Server::start().await.unwrap();
    let started = Instant::now();
    let store = client(&server, "not-the-secret");
    let path = Path::from("jobs/x.json");
    let put = store.put(&path, b"{}".to_vec().into()).await;
    assert!(put.is_err(), "a badly signed put was accepted");
    let message = format!("{:?}", put.unwrap_err());
    assert!(message.contains("SignatureDoesNotMatch") || message.contains("403"), "{message}");
    assert!(!server.data_dir().join(server.bucket()).join("jobs/x.json").exists());
    // object_store retries some failures; make sure the refusal stays quick.
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[tokio::test]
async fn the_server_stops_on_drop() {
    let server = S3Server::start().await.unwrap();
    let endpoint = server.endpoint();
    let addr = endpoint.trim_start_matches("http://").to_owned();
    assert!(tokio::net::TcpStream::connect(&addr).await.is_ok());
    drop(server);
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(tokio::net::TcpStream::connect(&addr).await.is_err(), "still listening after drop");
}

#[tokio::test]
async fn stop_and_restart_keep_the_port_and_the_objects() {
    let server = S3Server::start().await.unwrap();
    let endpoint = server.endpoint();
    let store = client(&server, server.secret_key());
    let path = Path::from("jobs/kept.json");
    store.put(&path, b"{}".to_vec().into()).await.unwrap();

    server.stop().await;
    let port = endpoint.rsplit(':').next().unwrap().parse::<u16>().unwrap();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "the port still answers after stop");

    server.restart().await.unwrap();
    assert_eq!(server.endpoint(), endpoint);
    let bytes = store.get(&path).await.unwrap().bytes().await.unwrap();
    assert_eq!(&bytes[..], b"{}");
}
