//! PUT /api/temperature and GET /api/readings.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{assert_problem, reading, spawn_app};

#[tokio::test]
async fn the_original_example_is_accepted_with_ok() {
    let (app, _store) = spawn_app().await;
    // Arrange: the exact body of the original service's README.
    let body = r#"{"sensorID": "107", "temperature": "12", "time": "2021-10-04 09:00:00"}"#;
    // Act: as curl -d sends it.
    let response = app
        .put_raw(body, Some("application/x-www-form-urlencoded"))
        .await;
    // Assert
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "Ok");
    let stats = app.stats(None).await;
    assert_eq!(
        stats,
        json!({"Average": 12.0, "Maximum": 12.0, "Minimum": 12.0, "Count": 1})
    );
}

#[tokio::test]
async fn numbers_and_strings_are_the_same_reading() {
    let (app, _store) = spawn_app().await;
    app.put_ok(&json!({"sensorID": 107, "temperature": 12.5, "time": "2021-10-04 09:00:00"}))
        .await;
    // The same reading spelled with strings and RFC 3339 is an exact repeat.
    app.put_ok(
        &json!({"sensorID": "107", "temperature": "12.50", "time": "2021-10-04T10:00:00+01:00"}),
    )
    .await;
    assert_eq!(app.stats(None).await["Count"], 1);
}

#[tokio::test]
async fn no_content_type_and_json_content_types_are_accepted() {
    let (app, _store) = spawn_app().await;
    let body = reading("1", "2021-10-04 09:00:00", 1.0).to_string();
    for (i, content_type) in [None, Some("application/json"), Some("text/plain")]
        .into_iter()
        .enumerate()
    {
        let body = body.replace("09:00:00", &format!("09:00:0{i}"));
        let response = app.put_raw(body, content_type).await;
        assert_eq!(response.status(), StatusCode::OK, "{content_type:?}");
    }
    assert_eq!(app.stats(None).await["Count"], 3);
}

#[tokio::test]
async fn an_exact_repeat_is_a_harmless_200() {
    let (app, _store) = spawn_app().await;
    let r = reading("7", "2021-10-04 09:00:00", 20.0);
    app.put_ok(&r).await;
    app.put_ok(&r).await;
    app.put_ok(&json!([r, r])).await;
    assert_eq!(app.stats(None).await["Count"], 1);
}

#[tokio::test]
async fn the_same_identity_with_another_temperature_is_409_and_changes_nothing() {
    let (app, _store) = spawn_app().await;
    app.put_ok(&reading("7", "2021-10-04 09:00:00", 20.0)).await;
    let response = app
        .put_readings(&reading("7", "2021-10-04 09:00:00", 21.0))
        .await;
    let problem = assert_problem(response, StatusCode::CONFLICT).await;
    assert_eq!(problem["conflicts"][0]["index"], 0);
    assert_eq!(problem["conflicts"][0]["storedTemperature"], 20.0);
    assert_eq!(problem["conflicts"][0]["temperature"], 21.0);
    let stats = app.stats(None).await;
    assert_eq!(stats["Count"], 1);
    assert_eq!(stats["Maximum"], 20.0);
}

#[tokio::test]
async fn a_batch_with_a_conflict_stores_nothing_and_names_the_index() {
    let (app, _store) = spawn_app().await;
    app.put_ok(&reading("7", "2021-10-04 09:00:00", 20.0)).await;
    let batch = json!([
        reading("7", "2021-10-04 09:00:01", 1.0),
        reading("7", "2021-10-04 09:00:00", 99.0),
        reading("8", "2021-10-04 09:00:00", 2.0),
    ]);
    let problem = assert_problem(app.put_readings(&batch).await, StatusCode::CONFLICT).await;
    let indexes: Vec<u64> = problem["conflicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, [1]);
    assert_eq!(
        app.stats(None).await["Count"],
        1,
        "nothing of the batch was stored"
    );
    assert_eq!(app.stats(Some("8")).await["Count"], 0);
}

#[tokio::test]
async fn a_batch_mixing_new_readings_and_exact_repeats_stores_the_new_ones() {
    let (app, _store) = spawn_app().await;
    app.put_ok(&reading("7", "2021-10-04 09:00:00", 20.0)).await;
    let batch = json!([
        reading("7", "2021-10-04 09:00:00", 20.0),
        reading("7", "2021-10-04 09:01:00", 22.0),
    ]);
    app.put_ok(&batch).await;
    let stats = app.stats(Some("7")).await;
    assert_eq!(
        stats,
        json!({"Average": 21.0, "Maximum": 22.0, "Minimum": 20.0, "Count": 2})
    );
}

#[tokio::test]
async fn two_sensors_at_the_same_second_do_not_overwrite_each_other() {
    let (app, _store) = spawn_app().await;
    app.put_ok(&reading("1", "2021-10-04 09:00:00", 10.0)).await;
    app.put_ok(&reading("2", "2021-10-04 09:00:00", 30.0)).await;
    assert_eq!(
        app.stats(None).await,
        json!({"Average": 20.0, "Maximum": 30.0, "Minimum": 10.0, "Count": 2})
    );
}

#[tokio::test]
async fn a_batch_with_an_invalid_reading_stores_nothing_and_names_every_bad_index() {
    let (app, _store) = spawn_app().await;
    let batch = json!([
        reading("1", "2021-10-04 09:00:00", 10.0),
        {"sensorID": "1", "time": "2021-10-04 09:00:01", "temperature": -300},
        reading("1", "2021-10-04 09:00:02", 11.0),
        {"sensorID": "", "time": "tomorrow", "temperature": "warm"},
    ]);
    let problem = assert_problem(
        app.put_readings(&batch).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let errors = problem["errors"].as_array().unwrap();
    let indexes: Vec<u64> = errors
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, [1, 3]);
    let fields: Vec<&str> = errors[1]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["sensorID", "time", "temperature"]);
    assert_eq!(app.stats(None).await["Count"], 0);
}

#[tokio::test]
async fn a_batch_of_1000_is_accepted_and_1001_is_413() {
    let (app, _store) = spawn_app().await;
    let batch: Vec<Value> = (0..1000)
        .map(|i| {
            reading(
                "b",
                &format!("2021-10-04T09:{:02}:{:02}Z", i / 60, i % 60),
                i as f64,
            )
        })
        .collect();
    app.put_ok(&Value::Array(batch.clone())).await;
    let stats = app.stats(Some("b")).await;
    assert_eq!(stats["Count"], 1000);
    assert_eq!(stats["Average"], 499.5);
    let mut too_many = batch;
    too_many.push(reading("b", "2021-10-05 00:00:00", 1.0));
    assert_problem(
        app.put_readings(&Value::Array(too_many)).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    assert_eq!(app.stats(None).await["Count"], 1000);
}

#[tokio::test]
async fn concurrent_writers_lose_nothing_and_double_nothing() {
    let (app, _store) = spawn_app().await;
    let app = std::sync::Arc::new(app);
    let mut tasks = Vec::new();
    for writer in 0..16 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                let r = reading(
                    &format!("s{writer}"),
                    &format!("2021-10-04T09:00:{i:02}Z"),
                    f64::from(i),
                );
                app.put_ok(&r).await;
                // Every writer also retries its previous reading: harmless.
                app.put_ok(&r).await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let stats = app.stats(None).await;
    assert_eq!(stats["Count"], 16 * 25);
    assert_eq!(stats["Average"], 12.0);
    assert_eq!(stats["Minimum"], 0.0);
    assert_eq!(stats["Maximum"], 24.0);
}

#[tokio::test]
async fn readings_are_listed_in_time_order_with_rfc3339_utc_times() {
    let (app, _store) = spawn_app().await;
    app.put_ok(&json!([
        reading("s", "2021-10-04 09:00:02", 3.0),
        reading("s", "2021-10-04T11:00:00.5+02:00", 1.5),
        reading("s", "2021-10-04 09:00:01", 2.0),
        reading("other", "2021-10-04 09:00:01", 100.0),
    ]))
    .await;
    let response = app.readings(&[("sensorID", "s")]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"readings": [
            {"sensorID": "s", "time": "2021-10-04T09:00:00.500Z", "temperature": 1.5},
            {"sensorID": "s", "time": "2021-10-04T09:00:01Z", "temperature": 2.0},
            {"sensorID": "s", "time": "2021-10-04T09:00:02Z", "temperature": 3.0},
        ], "next": null})
    );
}

#[tokio::test]
async fn readings_paginate_with_a_cursor_and_filter_by_time_range() {
    let (app, _store) = spawn_app().await;
    let batch: Vec<Value> = (0..10)
        .map(|i| reading("p", &format!("2021-10-04 09:00:0{i}"), f64::from(i)))
        .collect();
    app.put_ok(&Value::Array(batch)).await;
    // from inclusive, to exclusive: seconds 2..=7, in pages of 4.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut query = vec![
            ("sensorID", "p".to_owned()),
            ("from", "2021-10-04 09:00:02".to_owned()),
            ("to", "2021-10-04T09:00:08Z".to_owned()),
            ("limit", "4".to_owned()),
        ];
        if let Some(cursor) = &cursor {
            query.push(("cursor", cursor.clone()));
        }
        let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let body: Value = app.readings(&query).await.json().await.unwrap();
        for r in body["readings"].as_array().unwrap() {
            seen.push(r["temperature"].as_f64().unwrap());
        }
        pages += 1;
        match body["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 10, "pagination must end");
    }
    assert_eq!(seen, [2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
    assert_eq!(pages, 2);
}

#[tokio::test]
async fn readings_query_errors_are_400_problems() {
    let (app, _store) = spawn_app().await;
    for query in [
        vec![],
        vec![("sensorID", "")],
        vec![("sensorID", "s"), ("limit", "0")],
        vec![("sensorID", "s"), ("limit", "1001")],
        vec![("sensorID", "s"), ("limit", "ten")],
        vec![("sensorID", "s"), ("from", "yesterday")],
        vec![("sensorID", "s"), ("cursor", "garbage")],
    ] {
        assert_problem(app.readings(&query).await, StatusCode::BAD_REQUEST).await;
    }
    let body: Value = app
        .readings(&[("sensorID", "nobody")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body, json!({"readings": [], "next": null}));
}
