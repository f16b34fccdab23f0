//! Hostile input against the real binary: each gets a clear error with a stable code (or its file is
//! rejected with one), nothing half-stored stays behind, and the server keeps serving.
//!
//! Cases already covered in-process by `tests/api/uploads.rs` (traversal, 1000-character and HTML names,
//! CR/LF in `notify`, unknown fields) and at the converter level by `sluice-convert`'s `hostile` and
//! `orientation` tests are not repeated here; this suite adds what only a real process and socket show.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{
    Sluice, Upload, answer, client, code, files_under, png, sample, sample_part, settled, upload, wait_all,
};

/// An upload refused whole: what it is, its files and fields, the status and code expected.
type RefusedCase = (&'static str, Vec<Upload>, &'static [(&'static str, &'static str)], u16, &'static str);

/// CRC-32 (IEEE) of PNG chunks.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// A pixel flood: a valid PNG header announcing `size`×`size` pixels, with a small body.
fn flood_png(size: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::new();
    header.extend_from_slice(&size.to_be_bytes());
    header.extend_from_slice(&size.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB
    png_chunk(&mut out, b"IHDR", &header);
    png_chunk(&mut out, b"IDAT", &vec![0u8; 300 * 1024]); // a few hundred KB of body
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// One 1×1 GIF frame (image descriptor and LZW data for one pixel).
const GIF_FRAME: [u8; 15] = [0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0x02, 0x02, 0x44, 0x01, 0x00];

/// A GIF with a `width`×`height` logical screen and `frames` 1×1 frames (the first one as large as the
/// screen when `huge_frame`).
fn gif(width: u16, height: u16, frames: usize, huge_frame: bool) -> Vec<u8> {
    let mut out = b"GIF89a".to_vec();
    out.extend_from_slice(&width.to_le_bytes());
    out.extend_from_slice(&height.to_le_bytes());
    out.extend_from_slice(&[0x80, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF]); // two-colour global table
    if huge_frame {
        out.extend_from_slice(&[0x2C, 0, 0, 0, 0]);
        out.extend_from_slice(&width.to_le_bytes());
        out.extend_from_slice(&height.to_le_bytes());
        out.extend_from_slice(&[0, 0x02, 0x02, 0x44, 0x01, 0x00]);
    }
    for _ in 0..frames {
        out.extend_from_slice(&GIF_FRAME);
    }
    out.push(0x3B);
    out
}

/// A 64×32 JPEG carrying EXIF `orientation`.
fn oriented_jpeg(orientation: u8) -> Vec<u8> {
    let image = image::RgbImage::from_fn(64, 32, |x, _| image::Rgb([if x < 32 { 255 } else { 0 }, 64, 64]));
    let mut jpeg = std::io::Cursor::new(Vec::new());
    image.write_to(&mut jpeg, image::ImageFormat::Jpeg).unwrap();
    let jpeg = jpeg.into_inner();
    // Big-endian TIFF with one IFD entry: 0x0112 (Orientation), SHORT, count 1.
    let mut tiff = b"MM\x00\x2a\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00".to_vec();
    tiff.extend_from_slice(&[orientation, 0, 0, 0, 0, 0, 0]);
    let mut app1 = b"Exif\x00\x00".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec(); // SOI
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&u16::try_from(app1.len() + 2).unwrap().to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// Sends raw bytes on a fresh connection and reads the answer (or the close) within `limit`.
fn raw_exchange(port: u16, chunks: &[&[u8]], pause: Duration, limit: Duration) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(limit)).unwrap();
    for chunk in chunks {
        stream.write_all(chunk).unwrap();
        std::thread::sleep(pause);
    }
    let mut answer = Vec::new();
    let started = Instant::now();
    let mut buffer = [0u8; 4096];
    while started.elapsed() < limit {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// A multipart body with one file part whose Content-Disposition line is `disposition`.
fn raw_form(boundary: &str, disposition: &[u8], content: &[u8]) -> Vec<u8> {
    let mut body = format!("--{boundary}\r\n").into_bytes();
    body.extend_from_slice(disposition);
    body.extend_from_slice(b"\r\nContent-Type: image/png\r\n\r\n");
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_inputs_get_stable_codes_and_leave_nothing() {
    let mut sluice = Sluice::new(
        None,
        &[
            ("SLUICE__SERVER__MAX_UPLOAD_BYTES", "2500000"),
            ("SLUICE__SERVER__UPLOAD_IDLE_TIMEOUT_SECS", "2"),
            ("SLUICE__SERVER__HEADER_READ_TIMEOUT_SECS", "2"),
        ],
    );
    sluice.start().await;
    let http = client();
    let base = sluice.base();
    let mut tried = 0usize;
    let mut accepted: Vec<String> = Vec::new();

    // Refused whole, with a code.
    let photo = std::fs::read(sample("forest-stream.jpg")).unwrap();
    let refused: Vec<RefusedCase> = vec![
        (
            "svg",
            vec![(
                "logo.svg".into(),
                br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#.to_vec(),
                Some("image/svg+xml"),
            )],
            &[],
            415,
            "unsupported_media_type",
        ),
        (
            "pdf",
            vec![("doc.pdf".into(), b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj".to_vec(), Some("application/pdf"))],
            &[],
            415,
            "unsupported_media_type",
        ),
        (
            "text named .jpg",
            vec![("photo.jpg".into(), b"I am text".to_vec(), Some("image/jpeg"))],
            &[],
            415,
            "unsupported_media_type",
        ),
        (
            "CR/LF in notify",
            vec![sample_part("forest-stream.jpg")],
            &[("notify", "a@example.com\r\nBcc: b@example.com")],
            400,
            "invalid_notify",
        ),
        (
            "oversized",
            vec![sample_part("forest-stream.jpg"), sample_part("dragonfly-on-branch.jpg")],
            &[],
            413,
            "payload_too_large",
        ),
    ];
    for (what, files, fields, status, expected) in refused {
        tried += 1;
        let (got, _, body) = answer(upload(&http, &base, files, fields).await.unwrap()).await;
        assert_eq!((got, code(&body)), (status, expected), "{what}: {body}");
    }

    // Malformed multipart and hostile names in raw form headers.
    let tiny = png(8, 8);
    let raw_cases: Vec<(&str, String, Vec<u8>, u16, &str)> = vec![
        (
            "no boundary",
            "multipart/form-data".into(),
            raw_form("B", b"Content-Disposition: form-data; name=\"file\"; filename=\"a.png\"", &tiny),
            415,
            "expected_multipart",
        ),
        (
            "wrong boundary",
            "multipart/form-data; boundary=OTHER".into(),
            raw_form("B", b"Content-Disposition: form-data; name=\"file\"; filename=\"a.png\"", &tiny),
            400,
            "malformed_multipart",
        ),
        (
            "unterminated",
            "multipart/form-data; boundary=B".into(),
            b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\nabc".to_vec(),
            400,
            "malformed_multipart",
        ),
    ];
    for (what, content_type, body, status, expected) in raw_cases {
        tried += 1;
        let response = http
            .post(format!("{base}/v1/uploads"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let (got, _, body) = answer(response).await;
        assert_eq!((got, code(&body)), (status, expected), "{what}: {body}");
    }
    // CR/LF, NUL and escape sequences in a file name: refused, or kept as metadata without them (a CR/LF
    // ends the part's header line, so what follows it is a header of its own, and ignored).
    let names: [&[u8]; 2] = [b"a\r\nX-Evil: 1.png", b"a\x00b\x1b[31m.png"];
    for name in names {
        tried += 1;
        let mut disposition = b"Content-Disposition: form-data; name=\"file\"; filename=\"".to_vec();
        disposition.extend_from_slice(name);
        disposition.push(b'"');
        let body = raw_form("B", &disposition, &tiny);
        let response = http
            .post(format!("{base}/v1/uploads"))
            .header("content-type", "multipart/form-data; boundary=B")
            .body(body)
            .send()
            .await
            .unwrap();
        let (status, _, body) = answer(response).await;
        match status {
            202 => {
                let name = body["files"][0]["name"].as_str().unwrap();
                assert!(!name.chars().any(char::is_control), "control characters kept in {name:?}");
                assert!(!name.contains("X-Evil"), "{name:?}");
                accepted.push(body["id"].as_str().unwrap().to_owned());
            }
            _ => assert_eq!((status, code(&body)), (400, "malformed_multipart"), "{body}"),
        }
    }

    // Accepted, with each hostile file rejected for its reason and the good ones converted.
    let truncated = photo[..photo.len() / 3].to_vec();
    let mut corrupt = b"\x89PNG\r\n\x1a\n".to_vec();
    corrupt.extend((0..20_000u32).map(|n| (n.wrapping_mul(2_654_435_761) >> 13) as u8));
    let files: Vec<Upload> = vec![
        ("flood.png".into(), flood_png(30_000), Some("image/png")),
        ("screen.gif".into(), gif(u16::MAX, u16::MAX, 1, true), Some("image/gif")),
        ("frames.gif".into(), gif(1, 1, 20_000, false), Some("image/gif")),
        ("truncated.jpg".into(), truncated, Some("image/jpeg")),
        ("corrupt.png".into(), corrupt, Some("image/png")),
        ("liar.jpg".into(), b"%PDF-1.7 pretending".to_vec(), Some("image/jpeg")),
        sample_part("paint-brushes-cmyk.jpg"),
    ];
    tried += files.len();
    let (status, _, body) = answer(upload(&http, &base, files, &[]).await.unwrap()).await;
    assert_eq!(status, 202, "{body}");
    let mixed = body["id"].as_str().unwrap().to_owned();
    accepted.push(mixed.clone());

    // EXIF orientations 1 to 8: 5 to 8 turn the 64×32 picture upright as 32×64.
    let files: Vec<Upload> = (1..=8).map(|n| (format!("o{n}.jpg"), oriented_jpeg(n), Some("image/jpeg"))).collect();
    tried += files.len();
    let (status, _, body) = answer(upload(&http, &base, files, &[]).await.unwrap()).await;
    assert_eq!(status, 202, "{body}");
    let oriented = body["id"].as_str().unwrap().to_owned();
    accepted.push(oriented.clone());

    // Slow, aborted and slowloris clients on raw sockets (blocking: off the async threads).
    let port = sluice.port;
    let head = "POST /v1/uploads HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=B\r\n\
                Content-Length: 100000\r\n\r\n";
    let part = b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"slow.png\"\r\n\r\n\x89PNG\r\n\x1a\n"
        .to_vec();
    let whole = raw_form("B", b"Content-Disposition: form-data; name=\"file\"; filename=\"half.png\"", &png(8, 8));
    let half_closed = format!(
        "POST /v1/uploads HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=B\r\n\
         Content-Length: {}\r\n\r\n",
        whole.len()
    );
    let (slow, slowloris, half) = tokio::task::spawn_blocking(move || {
        // Stalls mid-body longer than upload_idle_timeout_secs: 408.
        let slow = raw_exchange(port, &[head.as_bytes(), &part], Duration::from_millis(100), Duration::from_secs(15));
        // Disconnects mid-body.
        {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
            stream.write_all(head.as_bytes()).unwrap();
            stream.write_all(&part).unwrap();
            stream.write_all(&[0u8; 4096]).unwrap();
        }
        // Sends a request head that never ends: closed after header_read_timeout_secs.
        let slowloris = raw_exchange(
            port,
            &[b"POST /v1/uploads HTTP/1.1\r\nHost: 127.0.0.1\r\n", b"X-Slow: 1\r\n"],
            Duration::from_millis(500),
            Duration::from_secs(15),
        );
        // Sends a whole upload, then shuts its sending side (as `nc -N` does) and waits for the answer.
        let half = {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
            stream.write_all(half_closed.as_bytes()).unwrap();
            stream.write_all(&whole).unwrap();
            stream.shutdown(std::net::Shutdown::Write).unwrap();
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer);
            String::from_utf8_lossy(&answer).into_owned()
        };
        (slow, slowloris, half)
    })
    .await
    .unwrap();
    tried += 4;
    assert!(half.starts_with("HTTP/1.1 202"), "an upload whose client half-closed got: {half}");
    let half_job: Value = serde_json::from_str(&half[half.find("\r\n\r\n").unwrap() + 4..]).unwrap();
    accepted.push(half_job["id"].as_str().unwrap().to_owned());
    assert!(slow.starts_with("HTTP/1.1 408"), "a stalled upload got: {slow}");
    assert!(slow.contains("upload_timeout"), "{slow}");
    assert!(!slowloris.contains("HTTP/1.1 2"), "a never-ending request head got: {slowloris}");

    // The server keeps serving, and the accepted jobs end with the right outcome per file.
    let (status, _, _) = answer(http.get(format!("{base}/healthz")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    let docs = wait_all(&http, &base, &accepted, Duration::from_secs(60), settled).await;
    let outcome = |doc: &Value| -> Vec<(String, String)> {
        doc["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|file| {
                (file["state"].as_str().unwrap().to_owned(), file["error"]["code"].as_str().unwrap_or("").to_owned())
            })
            .collect()
    };
    let got = outcome(&docs[&mixed]);
    let want = [
        ("rejected", "too_many_pixels"),
        ("rejected", "too_many_pixels"),
        ("converted", ""),
        ("rejected", "undecodable"),
        ("rejected", "undecodable"),
        ("rejected", "type_mismatch"),
        ("converted", ""),
    ];
    let want: Vec<(String, String)> = want.iter().map(|(s, c)| ((*s).to_owned(), (*c).to_owned())).collect();
    assert_eq!(got, want, "{:#}", docs[&mixed]);
    for file in docs[&oriented]["files"].as_array().unwrap() {
        let orientation: u32 = file["name"].as_str().unwrap()[1..2].parse().unwrap();
        let big = file["outputs"].as_array().unwrap().iter().find(|output| output["name"] == "big").unwrap();
        let size = (big["width"].as_u64().unwrap(), big["height"].as_u64().unwrap());
        let want = if orientation >= 5 { (32, 64) } else { (64, 32) };
        assert_eq!(size, want, "orientation {orientation}: {file}");
    }

    // Nothing half-stored: only accepted jobs have records and originals (the aborted upload's files are
    // removed once the server notices the disconnect).
    let accepted_set: BTreeSet<&str> = accepted.iter().map(String::as_str).collect();
    let started = Instant::now();
    loop {
        let leftovers: Vec<String> = files_under(&sluice.storage().join("originals"))
            .into_iter()
            .chain(files_under(&sluice.storage().join("jobs")))
            .filter(|path| !accepted_set.contains(path.split(['/', '.']).next().unwrap()))
            .collect();
        if leftovers.is_empty() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "left behind by refused uploads: {leftovers:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("hostile input: {tried} inputs tried, {} upload(s) accepted, server still healthy", accepted.len());
}
