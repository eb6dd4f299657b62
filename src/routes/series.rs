//! `GET /api/series`: exact statistics per time bucket, for charts.
//!
//! Every bucket of the window is listed, empty ones too (`Count` 0, the values `null`), so a
//! chart shows gaps as gaps. Buckets are aligned to the epoch in UTC (a `1d` bucket is a UTC
//! day); `from` and `to` need not be aligned: the first and last bucket are then clipped to the
//! window, still exact, and keep their aligned start as `time`.

use std::collections::HashMap;

use serde::Serialize;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};
use warp::{Filter, Rejection};

use super::problem::Problem;
use super::query;
use super::with_storage;
use crate::domain::rollup::{self, Level};
use crate::domain::window::{MAX_BUCKETS, SeriesError, SeriesPlan, Span, Step};
use crate::domain::{Aggregate, Timestamp};
use crate::storage::Storage;

/// `GET /api/series?from=T&to=T&step=S[&sensorID=X]`
pub fn series_get(
    storage: Storage,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "series")
        .and(warp::get())
        .and(warp::query::<HashMap<String, String>>())
        .and(with_storage(storage))
        .then(get_series)
}

/// One bucket of the answer, named like `GET /api/stats`.
#[derive(Serialize)]
struct BucketView {
    time: String,
    #[serde(rename = "Count")]
    count: u64,
    #[serde(rename = "Average")]
    average: Option<f64>,
    #[serde(rename = "Minimum")]
    minimum: Option<f64>,
    #[serde(rename = "Maximum")]
    maximum: Option<f64>,
}

#[derive(Serialize)]
struct SeriesView {
    step: &'static str,
    from: String,
    to: String,
    buckets: Vec<BucketView>,
}

fn unprocessable(detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
}

/// Validates the query into a plan; every refusal says how to fix the request.
fn parse(query: &HashMap<String, String>, levels: &[Level]) -> Result<SeriesPlan, Problem> {
    let from = query::time(query, "from")?;
    let to = query::time(query, "to")?;
    let (Some(from), Some(to)) = (from, to) else {
        return Err(
            unprocessable("from and to are required: the series covers from <= time < to")
                .with("parameters", ["from", "to"]),
        );
    };
    let step = match query.get("step") {
        None => {
            return Err(unprocessable(format!(
                "step is required: one of {}",
                Step::names().join(", ")
            ))
            .with("steps", Step::names()));
        }
        Some(text) => Step::parse(text).ok_or_else(|| {
            unprocessable(format!(
                "step {text:?} is not accepted: use one of {} (each is served exactly from \
                 the stored rollups)",
                Step::names().join(", ")
            ))
            .with("steps", Step::names())
        })?,
    };
    SeriesPlan::new(Span::new(from.micros(), to.micros()), step, levels).map_err(
        |error| match error {
            SeriesError::EmptyWindow => unprocessable("from must be before to"),
            SeriesError::TooManyBuckets(count) => unprocessable(format!(
                "the series would hold {count} buckets of {step}; at most {MAX_BUCKETS} are \
                 answered: narrow from..to or choose a wider step"
            ))
            .with("buckets", count)
            .with("limit", MAX_BUCKETS),
        },
    )
}

async fn get_series(query: HashMap<String, String>, storage: Storage) -> Response {
    let sensor = match query::sensor(&query) {
        Ok(sensor) => sensor,
        Err(problem) => return problem.into_response(),
    };
    let levels = rollup::levels(sensor.is_some());
    let plan = match parse(&query, levels) {
        Ok(plan) => plan,
        Err(problem) => return problem.into_response(),
    };
    if let Err(beyond) = storage
        .retention()
        .horizons_now()
        .check_pieces(&plan.pieces, levels)
    {
        return super::readings::beyond_problem(beyond).into_response();
    }
    match storage.series(sensor.as_ref(), &plan).await {
        Ok(aggregates) => super::json::reply(&view(&plan, &aggregates)).into_response(),
        Err(error) => Problem::from(error).into_response(),
    }
}

fn rfc3339(micros: i64) -> String {
    Timestamp::from_micros(micros).map_or_else(String::new, Timestamp::to_rfc3339)
}

fn view(plan: &SeriesPlan, aggregates: &[Aggregate]) -> SeriesView {
    let buckets = aggregates
        .iter()
        .enumerate()
        .map(|(index, aggregate)| {
            let stats = aggregate.stats();
            BucketView {
                time: rfc3339(plan.bucket_start(index)),
                count: stats.count,
                average: stats.average,
                minimum: stats.minimum,
                maximum: stats.maximum,
            }
        })
        .collect();
    SeriesView {
        step: plan.step.name(),
        from: rfc3339(plan.window.from),
        to: rfc3339(plan.window.to),
        buckets,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::rollup::SENSOR_LEVELS;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn refusal(pairs: &[(&str, &str)]) -> (StatusCode, String) {
        let problem = parse(&query(pairs), &SENSOR_LEVELS).unwrap_err();
        let detail = problem.body()["detail"].as_str().unwrap().to_owned();
        (problem.status(), detail)
    }

    #[test]
    fn every_refusal_says_how_to_fix_the_request() {
        let (status, detail) = refusal(&[("to", "2021-10-04 10:00:00"), ("step", "1h")]);
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(detail.contains("from and to are required"), "{detail}");
        let window = [
            ("from", "2021-10-04 09:00:00"),
            ("to", "2021-10-05 09:00:00"),
        ];
        let (status, detail) = refusal(&[window[0], window[1], ("step", "2h")]);
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(detail.contains("1m, 5m, 15m, 1h, 6h, 1d"), "{detail}");
        let (_, detail) = refusal(&[window[0], window[1]]);
        assert!(detail.contains("step is required"), "{detail}");
        let (status, detail) = refusal(&[
            ("from", "2021-01-01 00:00:00"),
            ("to", "2022-01-01 00:00:00"),
            ("step", "1m"),
        ]);
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(detail.contains("525600 buckets"), "{detail}");
        assert!(detail.contains("wider step"), "{detail}");
        let (status, _) = refusal(&[window[1], ("to", "2021-10-04 09:00:00"), ("step", "1h")]);
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (status, detail) = refusal(&[("from", "yesterday"), window[1], ("step", "1h")]);
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(detail.contains("from"), "{detail}");
    }

    #[test]
    fn buckets_carry_their_aligned_start_and_nulls_when_empty() {
        let plan = parse(
            &query(&[
                ("from", "2021-10-04T09:30:00Z"),
                ("to", "2021-10-04T11:00:00+00:00"),
                ("step", "1h"),
            ]),
            &SENSOR_LEVELS,
        )
        .unwrap();
        let mut one = Aggregate::default();
        one.add(crate::domain::Temperature::from_micros(12_500_000).unwrap());
        let json = serde_json::to_value(view(&plan, &[one, Aggregate::default()])).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "step": "1h",
                "from": "2021-10-04T09:30:00Z",
                "to": "2021-10-04T11:00:00Z",
                "buckets": [
                    {"time": "2021-10-04T09:00:00Z", "Count": 1, "Average": 12.5, "Minimum": 12.5, "Maximum": 12.5},
                    {"time": "2021-10-04T10:00:00Z", "Count": 0, "Average": null, "Minimum": null, "Maximum": null},
                ]
            })
        );
    }
}
