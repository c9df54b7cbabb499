//! `cairn report`: a self-contained page, checked as text and then opened in headless Chromium
//! (Debian's `chromium`, which scripts/setup.sh installs): it must load with no console error,
//! and its screenshot must not be blank.

mod common;

use std::process::Command;

use common::Project;

/// A small pipeline with a figure (describe), metrics and a text file, and a stage never run.
fn looked_at() -> Project {
    let p = Project::new();
    let mut tweets = String::new();
    for i in 0..40 {
        let (text, label) = match i % 3 {
            0 => ("i feel so sad and alone tonight", "sadness"),
            1 => ("what a happy day", "joy"),
            _ => ("i love you", "love"),
        };
        tweets.push_str(&format!("{text} {i};{label}\n"));
    }
    p.write("data/tweets.txt", &tweets);
    p.write(
        "pipeline.yaml",
        r#"
name: look
description: A first look at some tweets <with> & without "quotes"
stages:
  load:
    kind: load
    format: delimited
    delimiter: ";"
    columns: [text, label]
    labels: [sadness, joy, love]
    splits: {train: data/tweets.txt}
  describe: {kind: describe, inputs: [load]}
  notes: {kind: test-source, write-file: true, score: 0.8125}
  later: {kind: test-map, inputs: [notes], add: 1}
"#,
    );
    p.cairn(&[
        "run",
        "pipeline.yaml",
        "--target",
        "describe",
        "--target",
        "notes",
    ])
    .ok();
    p
}

#[test]
fn the_report_holds_the_dag_stages_metrics_figures_and_text() {
    let p = looked_at();
    let out = p
        .cairn(&["report", "pipeline.yaml", "-o", "report.html"])
        .ok();
    assert_eq!(out.stdout.trim(), "report.html");
    let html = p.read("report.html");
    assert!(html.starts_with("<!DOCTYPE html>"), "{}", &html[..80]);
    assert!(
        html.contains("A first look at some tweets &lt;with&gt; &amp; without &quot;quotes&quot;"),
        "the description, escaped"
    );
    assert!(html.contains("<svg") && html.contains("href=\"#stage-describe\""));
    for id in ["load", "describe", "notes", "later"] {
        assert!(html.contains(&format!("id=\"stage-{id}\"")), "section {id}");
    }
    let pngs = html.matches("data:image/png;base64,").count();
    assert_eq!(pngs, 2, "describe's two figures, inline");
    assert!(html.contains("0.8125"), "notes' metric");
    assert!(html.contains("rows=3"), "notes' text file, shown");
    assert!(html.contains("never run"), "`later` has not run");
    // (The SVG's xmlns is a name, not a fetch.)
    for fetch in [
        "src=\"http",
        "href=\"http",
        "url(http",
        "@import",
        "<script",
        "<link",
    ] {
        assert!(!html.contains(fetch), "no network, no script: {fetch}");
    }
}

#[test]
fn the_report_renders_in_headless_chromium_without_errors() {
    let p = looked_at();
    p.cairn(&["report", "pipeline.yaml", "-o", "report.html"])
        .ok();
    let page = format!("file://{}", p.path("report.html").display());
    let profile = p.path("chromium-profile");
    let shot = p.path("shot.png");
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1200,900",
            &format!("--user-data-dir={}", profile.display()),
            &format!("--screenshot={}", shot.display()),
            &page,
        ])
        .output()
        .expect("chromium is not installed: run scripts/setup.sh");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chromium failed: {log}");
    let console: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught") || l.contains("Refused"))
        .collect();
    assert!(console.is_empty(), "console messages: {console:#?}");
    let png = std::fs::read(&shot).expect("a screenshot");
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let pixels = &pixels[..info.buffer_size()];
    let channels = info.color_type.samples();
    let first = &pixels[..channels];
    let differing = pixels.chunks(channels).filter(|px| px != &first).count();
    let share = differing as f64 / (pixels.len() / channels) as f64;
    assert!(
        share > 0.02,
        "the screenshot is blank ({:.2} % of pixels differ from the first)",
        share * 100.0
    );
}
