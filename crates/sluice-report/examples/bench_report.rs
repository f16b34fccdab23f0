//! Generates a CSV of 1,000,000 sales rows (about 75 MB) in a temporary folder, renders its report streaming
//! from the file, and prints the time taken and the peak resident memory (`VmHWM` from `/proc/self/status`).
//! The baseline, measured in the same run on the same file: the `csv` crate reading every record and nothing
//! else, the floor of any CSV report; the report's time is printed as a ratio to it.
//!
//! `cargo run --release -p sluice-report --example bench_report [ROWS]`

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::time::Instant;

use sluice_report::{ReportHeading, ReportSettings, TabularKind, Templates, render_report_from_reader};

fn memory(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| status.lines().find(|l| l.starts_with(field)).map(|l| l.trim().to_owned()))
        .unwrap_or_else(|| format!("{field} unknown"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows: u64 = std::env::args().nth(1).map(|n| n.parse()).transpose()?.unwrap_or(1_000_000);
    let dir = std::env::temp_dir().join(format!("sluice-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("big.csv");
    let started = Instant::now();
    {
        let mut out = BufWriter::new(File::create(&path)?);
        writeln!(out, "date,region,product,order_id,units,unit_price,total")?;
        let regions = ["North", "South", "East", "West", "Central", "Islands", "Overseas", "Online"];
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for i in 0..rows {
            let day = i * 730 / rows.max(1);
            let (year, day_of_year) = (2023 + day / 365, day % 365);
            let (month, day_of_month) = (day_of_year / 31 + 1, day_of_year % 28 + 1);
            let units = next() % 50 + 1;
            let cents = 199 + next() % 20_000;
            let total = units * cents;
            writeln!(
                out,
                "{year}-{month:02}-{day_of_month:02},{},Product {},ORD-{:08},{units},{}.{:02},{}.{:02}",
                regions[(next() % 8) as usize],
                next() % 500,
                next() % 100_000_000,
                cents / 100,
                cents % 100,
                total / 100,
                total % 100,
            )?;
        }
        out.flush()?;
    }
    let size = std::fs::metadata(&path)?.len();
    println!("generated {rows} rows, {:.1} MB, in {:.2?}", size as f64 / 1e6, started.elapsed());
    println!("before rendering: {}", memory("VmHWM"));

    let started = Instant::now();
    let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(BufReader::new(File::open(&path)?));
    let mut record = csv::ByteRecord::new();
    let mut records = 0u64;
    while reader.read_byte_record(&mut record)? {
        records += 1;
    }
    let baseline = started.elapsed();
    println!("baseline: read {records} records with the csv crate in {baseline:.2?}");

    let templates = Templates::embedded();
    let heading = ReportHeading {
        title: "big",
        source_name: "big.csv",
        kind: Some(TabularKind::Csv),
        generated_at: time::OffsetDateTime::now_utc(),
    };
    let started = Instant::now();
    let report = render_report_from_reader(
        &heading,
        BufReader::new(File::open(&path)?),
        &ReportSettings::default(),
        &templates,
    )?;
    let elapsed = started.elapsed();
    println!(
        "rendered {} rows x {} columns in {elapsed:.2?}: PDF {} KB, HTML {} KB",
        report.summary.rows,
        report.summary.columns.len(),
        report.pdf.len() / 1024,
        report.html.len() / 1024
    );
    println!("report / baseline: {:.1}x", elapsed.as_secs_f64() / baseline.as_secs_f64().max(1e-9));
    println!("peak memory: {} ({}); input {:.1} MB", memory("VmHWM"), memory("VmRSS"), size as f64 / 1e6);
    std::fs::write(dir.join("big.pdf"), &report.pdf)?;
    std::fs::write(dir.join("big.html"), &report.html)?;
    println!("outputs in {}", dir.display());
    std::fs::remove_file(&path)?;
    Ok(())
}
