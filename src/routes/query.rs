//! Query-string parameters shared by the routes: list limits (`/api/readings`, `/api/sensors`,
//! `/picus/list`), time bounds and sensor ids (`/api/stats`, `/api/series`, `/api/readings`).

use std::collections::HashMap;

use warp::http::StatusCode;

use super::problem::Problem;
use crate::domain::{SensorId, Timestamp};

/// Default and largest page of every list.
pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1_000;

/// A 400 problem naming the bad parameter.
pub fn problem(parameter: &str, detail: &str) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        format!("query parameter {parameter}: {detail}"),
    )
    .with("parameter", parameter)
}

/// `limit`: an integer from 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent.
pub fn limit(query: &HashMap<String, String>) -> Result<usize, Problem> {
    match query.get("limit").map(|text| text.parse::<usize>()) {
        None => Ok(DEFAULT_LIMIT),
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(problem(
            "limit",
            &format!("must be an integer from 1 to {MAX_LIMIT}"),
        )),
    }
}

/// An optional time parameter, in either accepted format (`YYYY-MM-DD HH:MM:SS` as UTC, or
/// RFC 3339 with an offset).
pub fn time(query: &HashMap<String, String>, name: &str) -> Result<Option<Timestamp>, Problem> {
    query
        .get(name)
        .map(|text| Timestamp::parse_text(text).map_err(|detail| problem(name, &detail)))
        .transpose()
}

/// The optional `sensorID` parameter.
pub fn sensor(query: &HashMap<String, String>) -> Result<Option<SensorId>, Problem> {
    query
        .get("sensorID")
        .map(|text| SensorId::from_text(text).map_err(|detail| problem("sensorID", &detail)))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(limit: &str) -> HashMap<String, String> {
        HashMap::from([("limit".to_owned(), limit.to_owned())])
    }

    #[test]
    fn limit_defaults_and_bounds() {
        assert_eq!(limit(&HashMap::new()).unwrap(), DEFAULT_LIMIT);
        assert_eq!(limit(&query("1")).unwrap(), 1);
        assert_eq!(limit(&query("1000")).unwrap(), 1000);
        for bad in ["0", "1001", "-1", "ten", ""] {
            assert_eq!(
                limit(&query(bad)).unwrap_err().status(),
                StatusCode::BAD_REQUEST
            );
        }
    }
}
