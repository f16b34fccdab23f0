use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A config with two small variants, so the tests stay fast.
pub const CONFIG: &str = r#"
[convert.variants.small]
width = 128
height = 128
fit = "cover"
format = "webp"
quality = 70

[convert.variants.big]
width = 512
height = 512
fit = "contain"
format = "jpeg"
quality = 80
"#;

pub fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples").join(name)
}

pub fn copy_sample(name: &str, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(sample(name), to).unwrap();
}

/// The name of a GIF with every character HTML cares about.
pub const HOSTILE_NAME: &str = "<b>\"odd\" & name's.gif";

/// A non-UTF-8 name (Latin-1 "café.gif").
#[cfg(unix)]
pub fn latin1_name() -> std::ffi::OsString {
    use std::os::unix::ffi::OsStringExt;
    std::ffi::OsString::from_vec(b"caf\xe9.gif".to_vec())
}

/// A temp folder with `in/` (images in nested folders, bad files, a CSV, a link out), `outside/` and a
/// config file.
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in");
        copy_sample("paint-brushes-cmyk.jpg", &input.join("brushes.jpg"));
        copy_sample("portrait-mountain-sunset-exif-orientation-8.jpg", &input.join("sub/portrait.jpg"));
        copy_sample("fig-bowl-vignette-alpha.png", &input.join("sub/deeper/bowl.png"));
        copy_sample("ladybird-pan-animated.gif", &input.join("sub").join(HOSTILE_NAME));
        #[cfg(unix)]
        copy_sample("ladybird-pan-animated.gif", &input.join(latin1_name()));
        copy_sample("sales.csv", &input.join("sales.csv"));
        // A truncated JPEG, and a text file that claims to be one.
        let jpeg = std::fs::read(sample("paint-brushes-cmyk.jpg")).unwrap();
        std::fs::write(input.join("sub/broken.jpg"), &jpeg[..jpeg.len() / 3]).unwrap();
        std::fs::write(input.join("notes.jpg"), "just some text\n").unwrap();
        // Links pointing outside the input folder must not be followed.
        copy_sample("ladybird-pan-animated.gif", &dir.path().join("outside/secret.gif"));
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.path().join("outside/secret.gif"), input.join("link.gif")).unwrap();
            std::os::unix::fs::symlink(dir.path().join("outside"), input.join("linked-folder")).unwrap();
        }
        std::fs::write(dir.path().join("config.toml"), CONFIG).unwrap();
        Self { dir }
    }

    pub fn input(&self) -> PathBuf {
        self.dir.path().join("in")
    }

    pub fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    /// `sluice convert in --out out --config config.toml` plus `extra`.
    pub fn convert(&self, extra: &[&str]) -> Run {
        let mut args: Vec<String> = vec![
            "convert".into(),
            self.input().display().to_string(),
            "--out".into(),
            self.out().display().to_string(),
            "--config".into(),
            self.config().display().to_string(),
            "--jobs".into(),
            "2".into(),
        ];
        args.extend(extra.iter().map(|arg| (*arg).to_owned()));
        run_sluice(&args)
    }
}

/// A finished run of the binary.
pub struct Run {
    pub output: Output,
    pub elapsed: Duration,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.output.status.code().expect("the process was killed by a signal")
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    pub fn describe(&self) -> String {
        format!("exit {:?}\n--- stdout\n{}\n--- stderr\n{}", self.output.status.code(), self.stdout(), self.stderr())
    }
}

/// Runs the real binary with a bounded wait (killed after two minutes).
pub fn run_sluice<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Run {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .env_remove("SLUICE_CONFIG")
        .env_remove("SLUICE_SERVER")
        .env("NO_PROXY", "127.0.0.1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let limit = Duration::from_secs(120);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > limit {
            child.kill().unwrap();
            let output = child.wait_with_output().unwrap();
            panic!(
                "sluice did not finish within {limit:?}; stderr so far:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    Run { output, elapsed: started.elapsed() }
}

pub fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The files of a summary by path.
pub fn files_by_path(summary: &Value) -> BTreeMap<String, Value> {
    summary["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|file| (file["path"].as_str().unwrap().to_owned(), file.clone()))
        .collect()
}

/// Decodes an image file and returns its dimensions.
pub fn decoded_size(path: &Path) -> (u32, u32) {
    let image = image::open(path).unwrap_or_else(|error| panic!("cannot decode {}: {error}", path.display()));
    (image.width(), image.height())
}

/// Modification times of every file under `dir`, by relative path.
pub fn mtimes(dir: &Path) -> BTreeMap<PathBuf, std::time::SystemTime> {
    let mut found = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).unwrap().flatten() {
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else {
                found.insert(path.strip_prefix(dir).unwrap().to_path_buf(), meta.modified().unwrap());
            }
        }
    }
    found
}
