//! `GET /api/sensors` and `GET /api/sensors/{sensorID}`: every sensor with its count, first
//! reading time and latest reading, from the per-sensor summaries storage keeps in the same
//! commit as the readings (never from the readings themselves).

use std::collections::HashMap;

use serde::Serialize;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};
use warp::{Filter, Rejection};

use super::problem::Problem;
use super::query;
use super::with_storage;
use crate::domain::{SensorId, SensorSummary};
use crate::storage::Storage;

/// `GET /api/sensors[?limit=N][&cursor=C]`
pub fn sensors_list(
    storage: Storage,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "sensors")
        .and(warp::get())
        .and(warp::query::<HashMap<String, String>>())
        .and(with_storage(storage))
        .then(list_sensors)
}

/// `GET /api/sensors/{sensorID}` (the id percent-encoded as a path segment)
pub fn sensor_get(
    storage: Storage,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "sensors" / String)
        .and(warp::get())
        .and(with_storage(storage))
        .then(get_sensor)
}

#[derive(Serialize)]
struct LatestView {
    time: String,
    temperature: f64,
}

#[derive(Serialize)]
struct SensorView {
    #[serde(rename = "sensorID")]
    sensor_id: String,
    #[serde(rename = "Count")]
    count: u64,
    first: Option<String>,
    latest: Option<LatestView>,
}

#[derive(Serialize)]
struct PageView {
    sensors: Vec<SensorView>,
    next: Option<String>,
}

fn view(sensor: &SensorId, summary: &SensorSummary) -> SensorView {
    SensorView {
        sensor_id: sensor.to_string(),
        count: summary.aggregate.count,
        first: summary.first.map(|t| t.to_rfc3339()),
        latest: summary.latest.map(|p| LatestView {
            time: p.time.to_rfc3339(),
            temperature: p.temperature.celsius(),
        }),
    }
}

async fn list_sensors(query: HashMap<String, String>, storage: Storage) -> Response {
    let limit = match query::limit(&query) {
        Ok(limit) => limit,
        Err(problem) => return problem.into_response(),
    };
    // The cursor is the last sensorID of the previous page.
    let after = match query.get("cursor").map(|c| SensorId::from_text(c)) {
        None => None,
        Some(Ok(after)) => Some(after),
        Some(Err(detail)) => return query::problem("cursor", &detail).into_response(),
    };
    match storage.sensors(after.as_ref(), limit).await {
        Ok(page) => {
            let sensors: Vec<SensorView> = page
                .sensors
                .iter()
                .map(|(sensor, summary)| view(sensor, summary))
                .collect();
            let next = page.next.map(|s| s.to_string());
            super::json::reply(&PageView { sensors, next }).into_response()
        }
        Err(error) => Problem::from(error).into_response(),
    }
}

async fn get_sensor(segment: String, storage: Storage) -> Response {
    let decoded = percent_encoding::percent_decode_str(&segment).decode_utf8();
    let sensor = match decoded
        .map_err(|_| "must be UTF-8 once percent-decoded".to_owned())
        .and_then(|text| SensorId::from_text(&text))
    {
        Ok(sensor) => sensor,
        Err(detail) => {
            return Problem::new(
                StatusCode::BAD_REQUEST,
                format!("path parameter sensorID: {detail}"),
            )
            .with("parameter", "sensorID")
            .into_response();
        }
    };
    match storage.sensor(&sensor).await {
        Ok(Some(summary)) => super::json::reply(&view(&sensor, &summary)).into_response(),
        Ok(None) => Problem::new(
            StatusCode::NOT_FOUND,
            format!("no reading of sensor {:?} is stored", sensor.as_str()),
        )
        .into_response(),
        Err(error) => Problem::from(error).into_response(),
    }
}
