//! The one rule for numbers and times, over HTTP: numbers are rounded to the micro-degree on
//! their literal digits (JSON number or string alike), times truncated to the microsecond,
//! second 60 refused; identity and conflicts use the stored values.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn every_float_computed_reading_is_stored_and_its_retry_is_a_duplicate() {
    let (app, _store) = spawn_app().await;
    // The issue's Python client: temperatures computed the ordinary way, in binary floats.
    let batch: Vec<Value> = (0..400)
        .map(|i| {
            json!({
                "sensorID": "float",
                "time": format!("2021-10-04T09:{:02}:{:02}Z", i / 60, i % 60),
                "temperature": f64::from((i * 37) % 1000) / 10.0 - 20.0,
            })
        })
        .collect();
    assert!(
        serde_json::to_string(&batch)
            .unwrap()
            .contains("15.799999999999997"),
        "the batch holds float noise"
    );
    app.put_ok(&Value::Array(batch.clone())).await;
    app.put_ok(&Value::Array(batch)).await;
    assert_eq!(app.stats(None).await["Count"], 400);
    let stored = app.series("float").await;
    let expected: Vec<f64> = (0..400)
        .map(|i| f64::from((i * 37) % 1000 - 200) / 10.0)
        .collect();
    let got: Vec<f64> = stored.iter().map(|(_, t)| *t).collect();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn numbers_and_strings_follow_one_rule_on_their_literal_text() {
    let (app, _store) = spawn_app().await;
    let cases = [
        ("21.299999237060547", 21.299999),
        ("0.00000049999999999999999999", 0.0),
        ("0.0000005", 0.000001),
        ("1e-400", 0.0),
        ("999999999.99999999", 1e9),
        ("-273.1500004", -273.15),
        ("12.3456785", 12.345679),
    ];
    for (i, (text, _)) in cases.iter().enumerate() {
        let number = format!(
            r#"{{"sensorID": "n", "time": "2021-10-04 09:00:0{i}", "temperature": {text}}}"#
        );
        assert_eq!(
            app.put_raw(number, None).await.status(),
            StatusCode::OK,
            "{text}"
        );
        // The same value as a string is the same reading: a duplicate, never a conflict.
        let string = format!(
            r#"{{"sensorID": "n", "time": "2021-10-04 09:00:0{i}", "temperature": "{text}"}}"#
        );
        assert_eq!(
            app.put_raw(string, None).await.status(),
            StatusCode::OK,
            "{text}"
        );
    }
    let got: Vec<f64> = app.series("n").await.iter().map(|(_, t)| *t).collect();
    let want: Vec<f64> = cases.iter().map(|(_, t)| *t).collect();
    assert_eq!(got, want);
    for text in [
        "1e400",
        "1000000000.0000005",
        "-273.1500005",
        "\"NaN\"",
        "\"1e\"",
    ] {
        let body =
            format!(r#"{{"sensorID": "n", "time": "2021-10-04 10:00:00", "temperature": {text}}}"#);
        let response = app.put_raw(body, None).await;
        assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    assert_eq!(app.stats(None).await["Count"], cases.len());
}

#[tokio::test]
async fn a_value_that_rounds_to_another_is_a_conflict_with_the_stored_value() {
    let (app, _store) = spawn_app().await;
    app.put_ok(&json!({"sensorID": "c", "time": "2021-10-04 09:00:00", "temperature": 15.8}))
        .await;
    let same = json!({"sensorID": "c", "time": "2021-10-04 09:00:00", "temperature": 15.8000004});
    app.put_ok(&same).await;
    let other = json!({"sensorID": "c", "time": "2021-10-04 09:00:00", "temperature": 15.8000005});
    let problem = assert_problem(app.put_readings(&other).await, StatusCode::CONFLICT).await;
    assert_eq!(problem["conflicts"][0]["temperature"], 15.800001);
    assert_eq!(problem["conflicts"][0]["storedTemperature"], 15.8);
}

#[tokio::test]
async fn times_are_truncated_to_the_microsecond_and_second_60_is_refused() {
    let (app, _store) = spawn_app().await;
    let put = |time: &str, temperature: f64| json!({"sensorID": "t", "time": time, "temperature": temperature});
    app.put_ok(&put("2021-10-04T09:00:00.1234567891Z", 1.0))
        .await;
    // The stored time: a duplicate when the value matches, a conflict when it does not.
    app.put_ok(&put("2021-10-04 09:00:00.123456", 1.0)).await;
    app.put_ok(&put("2021-10-04T11:00:00.123456999+02:00", 1.0))
        .await;
    let response = app
        .put_readings(&put("2021-10-04T09:00:00.1234561Z", 2.0))
        .await;
    assert_problem(response, StatusCode::CONFLICT).await;
    assert_eq!(
        app.series("t").await,
        [("2021-10-04T09:00:00.123456Z".to_owned(), 1.0)]
    );
    for time in ["2021-10-04 12:34:60", "2016-12-31T23:59:60Z"] {
        let response = app.put_readings(&put(time, 1.0)).await;
        let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(problem["errors"][0]["errors"][0]["field"], "time");
    }
    assert_eq!(app.stats(None).await["Count"], 1);
}

#[tokio::test]
async fn accept_partial_stores_the_valid_readings_and_names_the_refused_ones() {
    let (app, _store) = spawn_app().await;
    app.put_ok(&json!({"sensorID": "p", "time": "2021-10-04 09:00:00", "temperature": 1}))
        .await;
    let body = json!([
        {"sensorID": "p", "time": "2021-10-04 09:00:01", "temperature": 2},
        {"sensorID": "p", "time": "2021-10-04 09:00:00", "temperature": 5},
        {"sensorID": "p", "time": "later", "temperature": 3},
        {"sensorID": "p", "time": "2021-10-04 09:00:02", "temperature": 3},
        {"sensorID": "p", "time": "2021-10-04 09:00:02", "temperature": 4},
        {"sensorID": "p", "time": "2021-10-04 09:00:01", "temperature": 2},
    ]);
    let response = app
        .client
        .put(app.url("/api/temperature?accept_partial=true"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["stored"], 2, "{answer}");
    assert_eq!(answer["duplicates"], 1, "{answer}");
    let refused: Vec<(u64, u64)> = answer["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["status"].as_u64().unwrap()))
        .collect();
    assert_eq!(refused, [(1, 409), (2, 422), (4, 409)]);
    assert_eq!(answer["refused"][0]["conflict"]["storedTemperature"], 1.0);
    assert_eq!(app.stats(Some("p")).await["Count"], 3);
    let response = app
        .client
        .put(app.url("/api/temperature?accept_partial=maybe"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::BAD_REQUEST).await;
}
