use std::path::Path;

use crate::helpers::{
    CONFIG, Fixture, HOSTILE_NAME, copy_sample, decoded_size, files_by_path, mtimes, read_json, run_sluice,
};

fn assert_near(actual: (u32, u32), expected: (u32, u32), what: &str) {
    let close = |a: u32, b: u32| a.abs_diff(b) <= 1;
    assert!(close(actual.0, expected.0) && close(actual.1, expected.1), "{what}: {actual:?}, expected {expected:?}");
}

#[test]
fn converts_a_folder_rejects_bad_files_and_skips_the_rest() {
    let fixture = Fixture::new();
    let run = fixture.convert(&[]);
    assert_eq!(run.code(), 2, "{}", run.describe());
    let out = fixture.out();

    // Outputs mirror the folder, are decodable and have the right sizes (orientation applied).
    let expected = [
        ("brushes.jpg", (512, 403)),
        ("sub/portrait.jpg", (342, 512)),
        ("sub/deeper/bowl.png", (512, 346)),
        (&format!("sub/{HOSTILE_NAME}") as &str, (480, 300)),
    ];
    for (input, big) in expected {
        assert_near(decoded_size(&out.join(format!("{input}.big.jpg"))), big, input);
        assert_eq!(decoded_size(&out.join(format!("{input}.small.webp"))), (128, 128), "{input}");
    }

    let summary = read_json(&out.join("summary.json"));
    let totals = &summary["totals"];
    assert_eq!(totals["converted"], 6, "{summary:#}");
    assert_eq!(totals["rejected"], 2, "{summary:#}");
    assert_eq!(totals["skipped"], 2, "{summary:#}");
    assert!(totals["bytes_in"].as_u64().unwrap() > 1_000_000);
    assert!(totals["megapixels"].as_f64().unwrap() > 8.0);

    let files = files_by_path(&summary);
    let brushes = &files["brushes.jpg"];
    assert_eq!(brushes["state"], "converted");
    assert_eq!(brushes["content_type"], "image/jpeg");
    assert_eq!((brushes["width"].as_u64(), brushes["height"].as_u64()), (Some(1365), Some(1074)));
    assert_eq!(brushes["sha256"].as_str().unwrap().len(), 64);
    let outputs = brushes["outputs"].as_array().unwrap();
    assert_eq!(outputs.len(), 2);
    assert_eq!(outputs[0]["name"], "big");
    assert_eq!(outputs[0]["path"], "brushes.jpg.big.jpg");
    assert_eq!(outputs[0]["content_type"], "image/jpeg");
    assert_eq!(outputs[1]["path"], "brushes.jpg.small.webp");
    assert_eq!((outputs[1]["width"].as_u64(), outputs[1]["height"].as_u64()), (Some(128), Some(128)));
    let written = std::fs::metadata(out.join("brushes.jpg.small.webp")).unwrap().len();
    assert_eq!(outputs[1]["bytes"].as_u64(), Some(written));
    assert_eq!(files["sub/portrait.jpg"]["width"], 1900, "displayed size, after the Exif orientation");

    assert_eq!(files["sub/broken.jpg"]["state"], "rejected");
    assert_eq!(files["sub/broken.jpg"]["error"]["code"], "undecodable", "{:#}", files["sub/broken.jpg"]);
    assert_eq!(files["notes.jpg"]["error"]["code"], "type_mismatch");
    let sales = &files["sales.csv"];
    assert_eq!(sales["state"], "converted", "{sales:#}");
    assert_eq!(sales["content_type"], "text/csv");
    let reports: Vec<&str> = sales["outputs"].as_array().unwrap().iter().map(|o| o["path"].as_str().unwrap()).collect();
    assert_eq!(reports, ["sales.csv.report.pdf", "sales.csv.report.html"]);
    assert!(std::fs::read(out.join("sales.csv.report.pdf")).unwrap().starts_with(b"%PDF-"));
    let page = std::fs::read_to_string(out.join("sales.csv.report.html")).unwrap();
    assert!(page.contains("345,467.70"), "the exact total of the sample's total column");
    assert!(!out.join("sub/broken.jpg.big.jpg").exists(), "nothing written for a rejected file");

    #[cfg(unix)]
    {
        // Links are reported, never followed; the non-UTF-8 name is kept byte for byte on disk.
        assert_eq!(files["link.gif"]["state"], "skipped");
        assert_eq!(files["link.gif"]["reason"]["code"], "symlink");
        assert_eq!(files["linked-folder"]["reason"]["code"], "symlink");
        assert!(files.keys().all(|path| !path.contains("secret")), "{:?}", files.keys());
        assert!(!out.join("link.gif.small.webp").exists());
        assert!(!out.join("linked-folder").exists());
        let latin1 = &files["caf\u{FFFD}.gif"];
        assert_eq!(latin1["state"], "converted");
        assert_eq!(latin1["path_lossy"], true);
        assert_eq!(files["brushes.jpg"]["path_lossy"], false);
        let mut raw = crate::helpers::latin1_name();
        raw.push(".small.webp");
        assert_eq!(decoded_size(&out.join(raw)), (128, 128));
    }

    // The contact sheet escapes every value and needs nothing from outside.
    let html = std::fs::read_to_string(out.join("summary.html")).unwrap();
    assert!(html.contains("&lt;b&gt;&quot;odd&quot; &amp; name&#39;s.gif"), "the hostile name, escaped");
    assert!(!html.contains("<b>\"odd\""), "the hostile name appears unescaped");
    assert!(html.contains("src=\"sub/%3Cb%3E%22odd%22%20%26%20name%27s.gif.small.webp\""), "thumbnail link");
    assert!(html.contains("src=\"brushes.jpg.small.webp\""));
    assert!(html.contains("undecodable"));
    assert!(!html.contains("http://") && !html.contains("https://"), "no external assets");

    // The table on stdout.
    let stdout = run.stdout();
    for line in ["converted", "rejected", "skipped", "bytes in", "bytes out", "elapsed", "MP/s"] {
        assert!(stdout.contains(line), "{line} missing from:\n{stdout}");
    }
    assert!(stdout.contains("sub/broken.jpg"), "{stdout}");

    // A re-run changes nothing: every image is unchanged, the bad ones are still reported, nothing rewritten.
    let before = mtimes(&out);
    let rerun = fixture.convert(&[]);
    assert_eq!(rerun.code(), 2, "{}", rerun.describe());
    let summary = read_json(&out.join("summary.json"));
    assert_eq!(summary["totals"]["converted"], 0, "{summary:#}");
    assert_eq!(summary["totals"]["unchanged"], 6, "five images and the table");
    assert_eq!(summary["totals"]["rejected"], 2);
    let after = mtimes(&out);
    for (path, time) in &before {
        let name = path.to_string_lossy();
        if !name.starts_with("summary.") && !name.starts_with(".sluice-manifest") {
            assert_eq!(after.get(path), Some(time), "{name} was rewritten");
        }
    }
    assert!(rerun.elapsed < run.elapsed, "re-run {:?} vs first run {:?}", rerun.elapsed, run.elapsed);
    // The contact sheet of a re-run still shows the thumbnails.
    let html = std::fs::read_to_string(out.join("summary.html")).unwrap();
    assert!(html.contains("src=\"brushes.jpg.small.webp\""));

    // Changed content is reconverted; the rest stays.
    copy_sample("ladybird-pan-animated.gif", &fixture.input().join("brushes.jpg"));
    let changed = fixture.convert(&[]);
    assert_eq!(changed.code(), 2, "{}", changed.describe());
    let summary = read_json(&out.join("summary.json"));
    assert_eq!(summary["totals"]["converted"], 1, "{summary:#}");
    assert_eq!(files_by_path(&summary)["brushes.jpg"]["content_type"], "image/gif");
    assert_eq!(decoded_size(&out.join("brushes.jpg.big.jpg")), (480, 300));

    // --force reconverts everything.
    let forced = fixture.convert(&["--force"]);
    assert_eq!(forced.code(), 2, "{}", forced.describe());
    let summary = read_json(&out.join("summary.json"));
    assert_eq!(summary["totals"]["converted"], 6, "{summary:#}");
    assert_eq!(summary["totals"]["unchanged"], 0);

    // A removed output is noticed: that input is converted again.
    std::fs::remove_file(out.join("sub/deeper/bowl.png.small.webp")).unwrap();
    let repaired = fixture.convert(&[]);
    let summary = read_json(&out.join("summary.json"));
    assert_eq!(summary["totals"]["converted"], 1, "{}", repaired.describe());
    assert!(out.join("sub/deeper/bowl.png.small.webp").is_file());

    // No temp file is left behind.
    assert!(mtimes(&out).keys().all(|path| !path.to_string_lossy().contains(".sluice-tmp")));
}

#[test]
fn a_subset_of_variants_and_an_unknown_one() {
    let fixture = Fixture::new();
    let run = fixture.convert(&["--variants", "small"]);
    assert_eq!(run.code(), 2, "{}", run.describe());
    assert!(fixture.out().join("brushes.jpg.small.webp").is_file());
    assert!(!fixture.out().join("brushes.jpg.big.jpg").exists());

    let unknown = fixture.convert(&["--variants", "small,huge"]);
    assert_eq!(unknown.code(), 1, "{}", unknown.describe());
    assert!(unknown.stderr().contains("unknown variant \"huge\""), "{}", unknown.stderr());
    assert!(unknown.stderr().contains("big, small"), "lists the configured ones: {}", unknown.stderr());
}

#[test]
fn all_good_exits_0_and_an_output_folder_inside_the_input_is_not_walked() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("photos");
    copy_sample("ladybird-pan-animated.gif", &input.join("a.gif"));
    copy_sample("sales.csv", &input.join("data/sales.csv"));
    std::fs::write(input.join("README.md"), "# hello\n").unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let out = input.join("converted");
    let args = |extra: &str| {
        let mut args = vec!["convert".to_owned(), input.display().to_string(), "--out".to_owned()];
        args.push(out.display().to_string());
        args.extend(["--config".to_owned(), config.display().to_string()]);
        if !extra.is_empty() {
            args.push(extra.to_owned());
        }
        args
    };
    for round in 0..2 {
        let run = run_sluice(&args(if round == 1 { "--force" } else { "" }));
        assert_eq!(run.code(), 0, "{}", run.describe());
        let summary = read_json(&out.join("summary.json"));
        let files = files_by_path(&summary);
        assert_eq!(files.keys().map(String::as_str).collect::<Vec<_>>(), ["README.md", "a.gif", "data/sales.csv"]);
        assert_eq!(summary["totals"]["converted"], 2);
        assert_eq!(summary["totals"]["skipped"], 1);
    }
    assert!(out.join("a.gif.small.webp").is_file());
}

#[test]
fn fatal_errors_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-folder");
    let run = run_sluice(&["convert", missing.to_str().unwrap(), "--out", dir.path().join("out").to_str().unwrap()]);
    assert_eq!(run.code(), 1, "{}", run.describe());
    assert!(run.stderr().contains("no-such-folder"), "{}", run.stderr());
    assert!(!dir.path().join("out/summary.json").exists());

    // A bad config names its key.
    let input = dir.path().join("in");
    copy_sample("ladybird-pan-animated.gif", &input.join("a.gif"));
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[convert.variants.tiny]\nwidth = 0\nheight = 10\n").unwrap();
    let out = dir.path().join("out");
    let run = run_sluice(&[
        "convert",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(run.code(), 1, "{}", run.describe());
    assert!(run.stderr().contains("convert.variants"), "{}", run.stderr());

    // The output folder may not be the input folder (outputs would land among the inputs).
    let run = run_sluice(&["convert", input.to_str().unwrap(), "--out", input.to_str().unwrap()]);
    assert_eq!(run.code(), 1, "{}", run.describe());
    assert!(!Path::new(&input.join("summary.json")).exists());
}

#[test]
fn ctrl_c_finishes_the_files_in_hand_records_them_and_a_rerun_does_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    let out = dir.path().join("out");
    for index in 0..40 {
        copy_sample("forest-stream.jpg", &input.join(format!("photo-{index:02}.jpg")));
    }
    std::fs::write(dir.path().join("config.toml"), CONFIG).unwrap();
    let args = [
        "convert".to_owned(),
        input.display().to_string(),
        "--out".to_owned(),
        out.display().to_string(),
        "--config".to_owned(),
        dir.path().join("config.toml").display().to_string(),
        "--jobs".to_owned(),
        "1".to_owned(),
    ];
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(&args)
        .env_remove("SLUICE_CONFIG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once the first photo is done, press Ctrl-C.
    let started = std::time::Instant::now();
    while std::fs::read_dir(&out).map_or(0, |entries| entries.count()) == 0 {
        assert!(started.elapsed() < std::time::Duration::from_secs(60), "no output after 60 s");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let sent = std::process::Command::new("kill").args(["-s", "INT", &child.id().to_string()]).status().unwrap();
    assert!(sent.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "the batch did not stop after Ctrl-C");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted:"), "{stderr}");

    // The re-run reuses what the interrupted run recorded and converts the rest.
    let rerun = run_sluice(&args);
    assert_eq!(rerun.code(), 0, "{}", rerun.describe());
    let summary = read_json(&out.join("summary.json"));
    let unchanged = summary["totals"]["unchanged"].as_u64().unwrap();
    let converted = summary["totals"]["converted"].as_u64().unwrap();
    assert!((1..40).contains(&unchanged), "{summary:#}");
    assert_eq!(unchanged + converted, 40, "{summary:#}");
}
