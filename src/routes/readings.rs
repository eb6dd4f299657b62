//! The readings API: `PUT /api/temperature`, `GET /api/stats` (all time or any window),
//! `GET /api/readings`.

use std::collections::HashMap;

use bytes::Bytes;
use serde::Serialize;
use serde_json::json;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};
use warp::{Filter, Rejection};

use super::body;
use super::partial_write::{PartialOutcome, put_partial};
use super::problem::Problem;
use super::query;
use super::with_storage;
use crate::domain::retention::Beyond;
use crate::domain::rollup;
use crate::domain::window::{ALL_TIME, Span, plan};
use crate::domain::{BatchError, Checked, MAX_BATCH, Partial, SensorId, Timestamp};
use crate::metrics::Metrics;
use crate::storage::{PutOutcome, ReadingsQuery, Storage};

/// PUT /api/temperature[?accept_partial=true]
pub fn readings_put(
    storage: Storage,
    metrics: Metrics,
    max_body_bytes: usize,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "temperature")
        .and(warp::put())
        .and(warp::query::<HashMap<String, String>>())
        .and(body::content_type())
        .and(body::limited(max_body_bytes))
        .and(with_storage(storage))
        .and(warp::any().map(move || metrics.clone()))
        .then(put_readings)
}

/// `accept_partial=true|false` (absent: false), shared by every write route.
pub fn accept_partial(query: &HashMap<String, String>) -> Result<bool, String> {
    match query.get("accept_partial").map(String::as_str) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(format!(
            "accept_partial must be true or false, not {other:?}"
        )),
    }
}

async fn put_readings(
    query: HashMap<String, String>,
    content_type: body::ContentType,
    body: Bytes,
    storage: Storage,
    metrics: Metrics,
) -> Response {
    // Admission before parsing: under a flood, a write the queue could not take anyway, or
    // one that waited too long for its turn to parse, costs the read of its body only.
    let slot = match storage.admit_write().await {
        Ok(slot) => slot,
        Err(error) => return Problem::from(error).into_response(),
    };
    let checked = accept_partial(&query)
        .map_err(|detail| Problem::new(StatusCode::BAD_REQUEST, detail))
        .and_then(|partial| {
            body::check_json(content_type?.as_deref(), &body)?;
            let checked = Checked::from_json(&body)
                .map_err(batch_problem)?
                .within(&storage.retention().horizons_now());
            Ok((partial, checked))
        });
    // Parsed: the body is not needed while the readings wait for their commit.
    drop(body);
    let checked = match checked {
        Ok((true, checked)) => {
            drop(slot);
            return put_partially(checked.partial(), &storage, &metrics).await;
        }
        Ok((false, checked)) => checked,
        Err(problem) => {
            metrics.readings_rejected();
            return problem.into_response();
        }
    };
    let sent = checked.readings.len() + checked.invalid.len();
    let batch = match checked.all_or_nothing() {
        Ok(batch) => batch,
        Err(error @ BatchError::SelfConflict(_)) => {
            // A conflict, counted like one with stored readings: each reading received.
            metrics.readings_conflicted(sent);
            return batch_problem(error).into_response();
        }
        Err(error) => {
            let problem = batch_problem(error);
            metrics.readings_rejected();
            return problem.into_response();
        }
    };
    drop(slot); // parsed: the commit wait is bounded by the write queue
    let received = batch.readings.len() + batch.repeats;
    match storage.put_readings(batch).await {
        Ok(PutOutcome::Stored { stored, duplicates }) => {
            metrics.readings_stored(stored, duplicates);
            "Ok".into_response()
        }
        Ok(PutOutcome::Conflict(conflicts)) => {
            metrics.readings_conflicted(received);
            Problem::new(
                StatusCode::CONFLICT,
                format!(
                    "{} reading(s) conflict with stored readings of the same sensorID and time; \
                     readings are immutable, so nothing of this request was stored",
                    conflicts.len()
                ),
            )
            .with("conflicts", conflicts)
            .into_response()
        }
        Ok(PutOutcome::Expired(indexes)) => {
            metrics.readings_rejected();
            Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("invalid reading(s) at index {indexes:?}; nothing was stored"),
            )
            .with("errors", expired_errors(&indexes))
            .into_response()
        }
        Err(error) => Problem::from(error).into_response(),
    }
}

/// The answer for readings the store refused as older than what retention already deleted.
fn expired_errors(indexes: &[usize]) -> Vec<serde_json::Value> {
    indexes
        .iter()
        .map(|index| json!({"index": index, "errors": [{"field": "time", "detail": EXPIRED}]}))
        .collect()
}

/// Why the store refused a reading the horizon check let through (it raced with a deletion).
pub const EXPIRED: &str = "is older than the retention horizon: readings of that time may \
                           already be deleted, so they are refused";

/// `accept_partial=true`: 200 with what was stored and every refused reading by index.
async fn put_partially(partial: Partial, storage: &Storage, metrics: &Metrics) -> Response {
    let Partial {
        batch,
        invalid,
        conflicts: in_request,
    } = partial;
    metrics.readings_conflicted(in_request.len());
    let PartialOutcome {
        stored,
        duplicates,
        conflicts: with_stored,
        expired,
    } = match put_partial(storage, metrics, batch).await {
        Ok(outcome) => outcome,
        Err(error) => return Problem::from(error).into_response(),
    };
    let mut refused: Vec<serde_json::Value> =
        invalid
            .into_iter()
            .map(|invalid| json!({"index": invalid.index, "status": 422, "errors": invalid.errors}))
            .chain(in_request.into_iter().chain(with_stored).map(
                |conflict| json!({"index": conflict.index, "status": 409, "conflict": conflict}),
            ))
            .chain(expired_errors(&expired).into_iter().map(|mut entry| {
                entry["status"] = json!(422);
                entry
            }))
            .collect();
    refused.sort_by_key(|entry| entry["index"].as_u64());
    super::json::reply(&json!({
        "stored": stored,
        "duplicates": duplicates,
        "refused": refused,
    }))
    .into_response()
}

fn batch_problem(error: BatchError) -> Problem {
    match error {
        BatchError::Malformed(detail) => Problem::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not valid JSON: {detail}"),
        ),
        BatchError::Empty => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the batch is empty: send one reading or an array of 1 to 1000",
        ),
        BatchError::TooMany(count) => Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the batch has {count} readings; at most {MAX_BATCH} are accepted per request"),
        )
        .with("limit", MAX_BATCH),
        BatchError::NotReadings => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the body must be a reading object or an array of reading objects",
        ),
        BatchError::Invalid(invalid) => {
            let indexes: Vec<usize> = invalid.iter().map(|i| i.index).collect();
            Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("invalid reading(s) at index {indexes:?}; nothing was stored"),
            )
            .with("errors", invalid)
        }
        BatchError::SelfConflict(conflicts) => Problem::new(
            StatusCode::CONFLICT,
            "the request holds the same sensorID and time with different temperatures; \
             nothing was stored",
        )
        .with("conflicts", conflicts),
    }
}

/// `GET /api/stats[?from=T][&to=T][&sensorID=X]`
pub fn stats_get(
    storage: Storage,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "stats")
        .and(warp::get())
        .and(warp::query::<HashMap<String, String>>())
        .and(with_storage(storage))
        .then(get_stats)
}

/// Without bounds: the all-time aggregate. With either bound: the readings with
/// `from <= time < to` (an open bound is the beginning or end of time), exact for any bounds;
/// `from >= to` is an empty window.
async fn get_stats(query: HashMap<String, String>, storage: Storage) -> Response {
    let parsed = query::sensor(&query).and_then(|sensor| {
        Ok((
            sensor,
            query::time(&query, "from")?,
            query::time(&query, "to")?,
        ))
    });
    let (sensor, from, to) = match parsed {
        Ok(parsed) => parsed,
        Err(problem) => return problem.into_response(),
    };
    let answer = if from.is_none() && to.is_none() {
        storage.stats(sensor.as_ref()).await
    } else {
        let window = Span::new(
            from.map_or(ALL_TIME.from, Timestamp::micros),
            to.map_or(ALL_TIME.to, Timestamp::micros),
        );
        let levels = rollup::levels(sensor.is_some());
        if let Err(beyond) = storage
            .retention()
            .horizons_now()
            .check_pieces(&plan(window, levels), levels)
        {
            return beyond_problem(beyond).into_response();
        }
        storage.window_stats(sensor.as_ref(), window).await
    };
    match answer {
        Ok(aggregate) => super::json::reply(&aggregate.stats()).into_response(),
        Err(error) => Problem::from(error).into_response(),
    }
}

/// A window or series that needs data retention has deleted: 422, saying where each kind of
/// data starts and what bounds would work.
pub fn beyond_problem(beyond: Beyond) -> Problem {
    let mut problem = Problem::new(StatusCode::UNPROCESSABLE_ENTITY, beyond.detail).with(
        "retainedFrom",
        Timestamp::from_micros(beyond.horizon).map(Timestamp::to_rfc3339),
    );
    if let Some(coarser) = beyond.coarser {
        problem = problem.with("alignTo", coarser.name());
    }
    problem
}

/// `GET /api/readings?sensorID=X[&from=T][&to=T][&limit=N][&cursor=C]`
pub fn readings_get(
    storage: Storage,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "readings")
        .and(warp::get())
        .and(warp::query::<HashMap<String, String>>())
        .and(with_storage(storage))
        .then(get_readings)
}

#[derive(Serialize)]
struct ReadingView {
    #[serde(rename = "sensorID")]
    sensor_id: String,
    time: String,
    temperature: f64,
}

async fn get_readings(query: HashMap<String, String>, storage: Storage) -> Response {
    let mut parsed = match parse_readings_query(&query) {
        Ok(parsed) => parsed,
        Err(problem) => return problem.into_response(),
    };
    // Readings beyond the retention horizon are never answered, deleted yet or not (the
    // DynamoDB backend deletes them days late): the page starts at the horizon, and says so.
    let retained_from = storage
        .retention()
        .horizons_now()
        .raw()
        .and_then(Timestamp::from_micros)
        .filter(|horizon| parsed.from.is_none_or(|from| from < *horizon));
    if let Some(horizon) = retained_from {
        parsed.from = Some(horizon);
    }
    match storage.readings(parsed).await {
        Ok(page) => {
            let readings: Vec<ReadingView> = page
                .readings
                .iter()
                .map(|r| ReadingView {
                    sensor_id: r.sensor_id.to_string(),
                    time: r.time.to_rfc3339(),
                    temperature: r.temperature.celsius(),
                })
                .collect();
            let next = page.next.map(Timestamp::to_sortable);
            let mut body = json!({"readings": readings, "next": next});
            if let Some(horizon) = retained_from {
                body["retainedFrom"] = json!(horizon.to_rfc3339());
            }
            super::json::reply(&body).into_response()
        }
        Err(error) => Problem::from(error).into_response(),
    }
}

fn parse_readings_query(query: &HashMap<String, String>) -> Result<ReadingsQuery, Problem> {
    let sensor_id = match query.get("sensorID") {
        None => return Err(query::problem("sensorID", "is required")),
        Some(text) => SensorId::from_text(text).map_err(|d| query::problem("sensorID", &d))?,
    };
    let time = |name: &str| -> Result<Option<Timestamp>, Problem> {
        query
            .get(name)
            .map(|text| Timestamp::parse_text(text).map_err(|d| query::problem(name, &d)))
            .transpose()
    };
    let limit = query::limit(query)?;
    Ok(ReadingsQuery {
        sensor_id,
        from: time("from")?,
        to: time("to")?,
        after: time("cursor")?,
        limit,
    })
}
