//! The dashboard at `GET /` in a real browser (headless Debian Chromium over WebDriver),
//! against the real server on 127.0.0.1: readings go in through the API, and the tests assert
//! what a person sees — sensor rows, latest values, statistics, the chart's points and gaps,
//! a hostile sensor id shown as text, the error state once the server is gone, and the read
//! token flow on a service with tokens (`token.rs`).
//!
//! Screenshots land in Cargo's per-test temporary directory (`target/tmp`); set
//! `DASHBOARD_SCREENSHOT=docs/dashboard.png` to refresh the README's picture.

#[path = "../api/helpers.rs"]
mod helpers;

mod browser;
mod fleet;
mod token;

use std::path::Path;

use chrono::{DateTime, Duration, DurationRound, FixedOffset, SecondsFormat, Utc};
use fantoccini::key::Key;
use serde_json::{Value, json};

use browser::Browser;
use helpers::spawn_app;

const XSS: &str = "<img src=x onerror=alert(1)>";

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn reading(sensor: &str, time: DateTime<Utc>, temperature: f64) -> Value {
    json!({"sensorID": sensor, "time": rfc3339(time), "temperature": temperature})
}

/// A temperature as the page shows it (en-US, at most two decimals).
fn celsius(value: f64) -> String {
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text} °C")
}

/// `h:mm:ss` of `time` in the browser's zone, as the page writes it (12-hour clock).
fn local_clock(time: DateTime<Utc>) -> String {
    in_browser_zone(time).format("%-I:%M:%S").to_string()
}

fn in_browser_zone(time: DateTime<Utc>) -> DateTime<FixedOffset> {
    let offset = FixedOffset::east_opt(browser::UTC_OFFSET_MINUTES as i32 * 60).expect("an offset");
    time.with_timezone(&offset)
}

/// What a `datetime-local` input holds for `time` in the browser's zone.
fn local_input(time: DateTime<Utc>) -> String {
    let offset = FixedOffset::east_opt(browser::UTC_OFFSET_MINUTES as i32 * 60).expect("an offset");
    time.with_timezone(&offset)
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

async fn stats_shown(browser: &Browser, card: &str) -> [String; 4] {
    let field = |name: &str| format!("#{card} dd[data-field={name}]");
    [
        browser.text(&field("Count")).await,
        browser.text(&field("Minimum")).await,
        browser.text(&field("Maximum")).await,
        browser.text(&field("Average")).await,
    ]
}

async fn until_stats(browser: &Browser, card: &str, expected: [&str; 4]) {
    browser
        .until(
            &format!("the statistics of {card}"),
            || stats_shown(browser, card),
            |shown| shown.iter().zip(expected).all(|(a, b)| a == b),
        )
        .await;
}

/// Waits until the chart shows `points` bucket markers drawn as `runs` unbroken lines.
async fn until_chart(browser: &Browser, points: usize, runs: usize) {
    browser
        .until(
            &format!("a chart of {points} points in {runs} runs"),
            || async {
                let shown = browser.count("#chart circle.point").await;
                let line = browser.find("#chart path.line").await;
                let drawn = line.attr("data-runs").await.ok().flatten();
                (shown, drawn)
            },
            |(shown, drawn)| *shown == points && drawn.as_deref() == Some(&runs.to_string()),
        )
        .await;
}

async fn sensor_ids(browser: &Browser) -> Vec<String> {
    browser.texts("#sensors tbody th").await
}

async fn until_sensor_ids(browser: &Browser, expected: &[&str]) {
    browser
        .until(
            "the sensor rows",
            || sensor_ids(browser),
            |ids| ids.iter().map(String::as_str).eq(expected.iter().copied()),
        )
        .await;
}

/// The button that selects `sensor` in the table.
fn select_button(sensor: &str) -> String {
    let quoted = serde_json::to_string(sensor).expect("a JSON string");
    format!("#sensors tbody button[data-sensor={quoted}]")
}

fn screenshot_path(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(name)
}

#[tokio::test]
async fn the_dashboard_shows_what_the_api_holds_and_says_when_the_service_is_gone() {
    let Some(browser) = Browser::start("dashboard", 1280, 1100).await else {
        return;
    };
    let (app, _store) = spawn_app().await;

    // Arrange: in the last hour, sensor 107 at minutes -50..-41 (20, 20.5 ... 24.5 °C),
    // sensor 208 at minutes -30..-21 (10 ... 14.5 °C), the hostile id at minute -10
    // (30 °C): three stretches of one-minute buckets with gaps between them. And one old
    // reading of 107, two days ago, inside "7 days" only.
    let minute = Utc::now()
        .duration_trunc(Duration::minutes(1))
        .expect("a whole minute");
    let at = |minutes_ago: i64| minute - Duration::minutes(minutes_ago);
    let mut readings = Vec::new();
    for (i, ago) in (41..=50).rev().enumerate() {
        readings.push(reading("107", at(ago), 20.0 + 0.5 * i as f64));
    }
    for (i, ago) in (21..=30).rev().enumerate() {
        readings.push(reading("208", at(ago), 10.0 + 0.5 * i as f64));
    }
    readings.push(reading(XSS, at(10), 30.0));
    readings.push(reading("107", minute - Duration::days(2), -40.0));
    app.put_ok(&Value::Array(readings)).await;

    browser.open(&app.url("/")).await;

    // The sensors, sorted by id (punctuation before digits), with latest value and count.
    until_sensor_ids(&browser, &[XSS, "107", "208"]).await;
    assert_eq!(
        browser.texts("#sensors tbody td.latest").await,
        ["30 °C", "24.5 °C", "14.5 °C"]
    );
    assert_eq!(
        browser.texts("#sensors tbody td.count").await,
        ["1", "11", "10"]
    );
    let latest_107 = browser.texts("#sensors tbody td.latest-time").await[1].clone();
    assert!(
        latest_107.contains(&local_clock(at(41))),
        "107's latest time {latest_107:?} is in the browser's zone ({} there)",
        local_clock(at(41))
    );

    // The hostile id is text: no image element, no alert, the literal string shown.
    assert_eq!(
        browser.count("img").await,
        0,
        "the sensor id made no element"
    );
    assert!(
        browser
            .client
            .get_alert_text()
            .await
            .is_err_and(|e| e.is_no_such_alert()),
        "no alert opened"
    );

    // Last 24 hours (the default): all 21 recent readings, not the old one.
    let mean = (222.5 + 122.5 + 30.0) / 21.0;
    until_stats(
        &browser,
        "stats-all",
        ["21", "10 °C", "30 °C", &celsius(mean)],
    )
    .await;

    // Last hour: one-minute buckets, so one point per reading, in three stretches.
    browser.pick("#range", "1h").await;
    until_chart(&browser, 21, 3).await;
    until_stats(
        &browser,
        "stats-all",
        ["21", "10 °C", "30 °C", &celsius(mean)],
    )
    .await;

    // The tooltip of the first point: sensor 107's first reading.
    let first_point = browser.find("#chart circle.point").await;
    browser.point_at(first_point).await;
    let tooltip = browser
        .until_text("#tooltip", |text| text.contains("Average"))
        .await;
    assert!(tooltip.contains("Average 20 °C"), "{tooltip}");
    assert!(tooltip.contains("1 reading"), "{tooltip}");
    assert!(tooltip.contains(&local_clock(at(50))), "{tooltip}");

    // The keyboard reaches every bucket too; the first one of the hour is empty.
    browser.type_into("#chart", &Key::Home.to_string()).await;
    browser
        .until(
            "the chart's readout for the first bucket",
            || async {
                browser
                    .find("#chart-readout")
                    .await
                    .prop("textContent")
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or_default()
            },
            |text: &String| text.contains("No readings"),
        )
        .await;

    // Sorting by count, both ways; filtering by id.
    let by_count = "#sensors thead button[data-sort=Count]";
    browser.click(by_count).await;
    until_sensor_ids(&browser, &[XSS, "208", "107"]).await;
    browser.click(by_count).await;
    until_sensor_ids(&browser, &["107", "208", XSS]).await;
    browser.type_into("#filter", "20").await;
    until_sensor_ids(&browser, &["208"]).await;
    assert_eq!(browser.text("#sensor-count").await, "1 of 3 sensors");
    let erase = format!("{}{}", Key::Backspace, Key::Backspace);
    browser.type_into("#filter", &erase).await;
    until_sensor_ids(&browser, &["107", "208", XSS]).await;

    // The hostile sensor selected: its id is the heading's text, its one reading charted.
    browser.click(&select_button(XSS)).await;
    until_stats(&browser, "stats-sensor", ["1", "30 °C", "30 °C", "30 °C"]).await;
    assert_eq!(browser.text("#stats-sensor-name").await, XSS);
    assert_eq!(
        browser.text("#chart-subject").await,
        format!("sensor {XSS}")
    );
    until_chart(&browser, 1, 1).await;
    assert_eq!(browser.count("img").await, 0);

    // Sensor 107: its ten readings of the hour, one stretch; then 7 days holds the old one.
    browser.click(&select_button("107")).await;
    until_stats(
        &browser,
        "stats-sensor",
        ["10", "20 °C", "24.5 °C", "22.25 °C"],
    )
    .await;
    until_chart(&browser, 10, 1).await;
    browser.pick("#range", "7d").await;
    until_stats(
        &browser,
        "stats-all",
        [
            "22",
            "-40 °C",
            "30 °C",
            &celsius((mean * 21.0 - 40.0) / 22.0),
        ],
    )
    .await;
    until_stats(
        &browser,
        "stats-sensor",
        ["11", "-40 °C", "24.5 °C", &celsius((222.5 - 40.0) / 11.0)],
    )
    .await;
    assert!(
        browser
            .find("#error")
            .await
            .is_displayed()
            .await
            .is_ok_and(|shown| !shown)
    );
    browser.screenshot(&screenshot_path("dashboard.png")).await;

    // A custom range, entered in the browser's zone: 107's ten readings only.
    browser.pick("#range", "custom").await;
    browser
        .client
        .execute(
            "document.getElementById('from').value = arguments[0];
             document.getElementById('to').value = arguments[1];",
            vec![json!(local_input(at(51))), json!(local_input(at(40)))],
        )
        .await
        .expect("the range is entered");
    browser.click("#custom button[type=submit]").await;
    until_stats(
        &browser,
        "stats-all",
        ["10", "20 °C", "24.5 °C", "22.25 °C"],
    )
    .await;
    until_chart(&browser, 10, 1).await;

    // The service goes away: the page says so, and keeps showing what it had.
    app.stop().await;
    browser.click("#refresh").await;
    let error = browser
        .until_text("#error", |text| text.contains("unreachable"))
        .await;
    assert!(error.contains("Retrying"), "{error}");
    assert_eq!(browser.text("#status").await, "Not updating");
    assert_eq!(sensor_ids(&browser).await.len(), 3);
    browser
        .screenshot(&screenshot_path("dashboard-error.png"))
        .await;
    browser.close().await;
}

#[tokio::test]
async fn a_realistic_fleet_charts_with_its_gap_for_the_readme() {
    let Some(browser) = Browser::start("dashboard (realistic fleet)", 1280, 1240).await else {
        return;
    };
    let (app, _store) = spawn_app().await;
    let fleet = fleet::Fleet::last_day(Utc::now());
    for batch in fleet.readings.chunks(1000) {
        app.put_ok(&Value::Array(batch.to_vec())).await;
    }

    browser.open(&app.url("/")).await;
    until_sensor_ids(&browser, &fleet::SENSORS).await;
    let (points, runs) = fleet.buckets_of(fleet::WITH_OUTAGE, 5);
    assert!(runs > 1, "the data set has a gap");
    browser.click(&select_button(fleet::WITH_OUTAGE)).await;
    until_chart(&browser, points, runs).await;
    let count = fleet.count_of(fleet::WITH_OUTAGE).to_string();
    browser
        .until_text("#stats-sensor dd[data-field=Count]", |text| text == count)
        .await;

    // Point at a reading in the afternoon, so the picture shows a tooltip.
    let markers = browser
        .client
        .find_all(fantoccini::Locator::Css("#chart circle.point"))
        .await
        .expect("points");
    let marker = markers[markers.len() * 2 / 3].clone();
    browser.point_at(marker).await;
    browser
        .until_text("#tooltip", |text| text.contains("Average"))
        .await;

    let path = screenshot_path("dashboard-readme.png");
    browser.screenshot(&path).await;
    if let Some(target) = std::env::var_os("DASHBOARD_SCREENSHOT") {
        std::fs::copy(&path, &target).expect("the README screenshot is written");
    }

    // On a phone-sized screen the page fits the width (the table scrolls inside its box)
    // and the chart is drawn anew for it.
    browser
        .client
        .set_window_size(390, 844)
        .await
        .expect("the window resizes");
    let fits = "return [document.documentElement.scrollWidth, window.innerWidth,
                        document.querySelector('#chart svg').getBoundingClientRect().right];";
    browser
        .until(
            "the page to fit a phone's width",
            || async { browser.client.execute(fits, vec![]).await.ok() },
            |widths| {
                let widths: Option<Vec<f64>> = widths
                    .as_ref()
                    .and_then(|w| w.as_array())
                    .map(|w| w.iter().filter_map(Value::as_f64).collect());
                widths.is_some_and(|w| w.len() == 3 && w[0] <= w[1] && w[2] <= w[1])
            },
        )
        .await;
    until_chart(&browser, points, runs).await;
    browser
        .screenshot(&screenshot_path("dashboard-phone.png"))
        .await;
    browser.close().await;
    app.stop().await;
}
