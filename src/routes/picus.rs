//! `/picus`: a small JSON item store with generated ids, on the same storage as the readings.
//!
//! Ids are the decimal strings of a counter starting at 1. A key that is not such a string
//! (`abc`, `01`, `-1`) can name no item, so it is a 404 like any unknown key.
//!
//! An item is stored as the JSON text it was posted as (checked to be one JSON object, outer
//! whitespace dropped), and answered as that text: never parsed into values and serialised
//! again, so its numbers keep every digit and a list costs no more memory than its text. A
//! list page stops at `limit` items or at `PICUS_LIST_MAX_BYTES` of item text, whichever comes
//! first (see [`crate::storage::ItemPageBuilder`]).

use std::collections::HashMap;

use bytes::Bytes;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use warp::http::{StatusCode, header};
use warp::reply::{Reply, Response};
use warp::{Filter, Rejection};

use super::body::{self, ContentType};
use super::problem::Problem;
use super::query;
use super::with_storage;
use crate::storage::{ItemId, Storage};

/// Largest accepted item body.
pub const MAX_ITEM_BYTES: usize = 64 * 1024;

/// One item of an answer, its text spliced in as stored.
#[derive(Serialize)]
struct ItemView<'a> {
    id: String,
    item: &'a RawValue,
}

/// POST /picus/put
pub fn item_put(storage: Storage) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("picus" / "put")
        .and(warp::post())
        .and(body::content_type())
        .and(body::limited(MAX_ITEM_BYTES))
        .and(with_storage(storage))
        .then(put_item)
}

async fn put_item(content_type: ContentType, body: Bytes, storage: Storage) -> Response {
    let checked = content_type.and_then(|label| body::parse_json(label.as_deref(), &body));
    match checked {
        Ok(Value::Object(_)) => {}
        Ok(_) => {
            return Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "an item must be a JSON object",
            )
            .into_response();
        }
        Err(problem) => return problem.into_response(),
    }
    // Valid JSON is UTF-8, and outside its strings whitespace is ASCII.
    let Ok(text) = std::str::from_utf8(body.trim_ascii()) else {
        return Problem::new(StatusCode::BAD_REQUEST, "the body is not UTF-8").into_response();
    };
    match storage.item_put(text.to_owned()).await {
        Ok(id) => {
            let reply = super::json::reply(&json!({"id": id.to_string()}));
            let reply = warp::reply::with_status(reply, StatusCode::CREATED);
            warp::reply::with_header(reply, header::LOCATION, format!("/picus/get/{id}"))
                .into_response()
        }
        Err(error) => Problem::from(error).into_response(),
    }
}

/// GET /picus/get/{key}
pub fn item_get(storage: Storage) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("picus" / "get" / String)
        .and(warp::get())
        .and(with_storage(storage))
        .then(get_item)
}

async fn get_item(key: String, storage: Storage) -> Response {
    let Some(id) = parse_key(&key) else {
        return not_found(&key);
    };
    match storage.item_get(id).await {
        Ok(Some(item)) => super::json::reply(&ItemView {
            id: key,
            item: &item,
        })
        .into_response(),
        Ok(None) => not_found(&key),
        Err(error) => Problem::from(error).into_response(),
    }
}

/// `GET /picus/list[?limit=N][&cursor=C]`, pages of at most `max_bytes` of item text.
pub fn item_list(
    storage: Storage,
    max_bytes: usize,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("picus" / "list")
        .and(warp::get())
        .and(warp::query::<HashMap<String, String>>())
        .and(with_storage(storage))
        .then(move |query, storage| list_items(query, storage, max_bytes))
}

async fn list_items(
    query: HashMap<String, String>,
    storage: Storage,
    max_bytes: usize,
) -> Response {
    let limit = match query::limit(&query) {
        Ok(limit) => limit,
        Err(problem) => return problem.into_response(),
    };
    let after = match query.get("cursor").map(|c| parse_key(c)) {
        None => None,
        Some(Some(id)) => Some(id),
        Some(None) => {
            return query::problem(
                "cursor",
                "must be a cursor from a previous page's Link header",
            )
            .into_response();
        }
    };
    match storage.item_list(after, limit, max_bytes).await {
        Ok(page) => {
            let items: Vec<ItemView<'_>> = page
                .items
                .iter()
                .map(|(id, item)| ItemView {
                    id: id.to_string(),
                    item,
                })
                .collect();
            let mut response = super::json::reply(&items).into_response();
            if let Some(next) = page.next {
                let link = format!("</picus/list?limit={limit}&cursor={next}>; rel=\"next\"");
                if let Ok(value) = link.parse() {
                    response.headers_mut().insert(header::LINK, value);
                }
            }
            response
        }
        Err(error) => Problem::from(error).into_response(),
    }
}

/// DELETE /picus/{key}
pub fn item_delete(
    storage: Storage,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("picus" / String)
        .and(warp::delete())
        .and(with_storage(storage))
        .then(delete_item)
}

/// The handler of `DELETE /picus/{key}`, shared with `telemetry-lambda`.
pub async fn delete_item(key: String, storage: Storage) -> Response {
    let Some(id) = parse_key(&key) else {
        return not_found(&key);
    };
    match storage.item_delete(id).await {
        Ok(true) => {
            super::json::reply(&json!({"message": "Item deleted successfully"})).into_response()
        }
        Ok(false) => not_found(&key),
        Err(error) => Problem::from(error).into_response(),
    }
}

/// The id named by a key, if the key is an id's canonical decimal form.
fn parse_key(key: &str) -> Option<ItemId> {
    let id: ItemId = key.parse().ok()?;
    (id >= 1 && id.to_string() == key).then_some(id)
}

fn not_found(key: &str) -> Response {
    Problem::new(StatusCode::NOT_FOUND, "no item has this key")
        .with("key", key)
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_positive_decimals_are_keys() {
        assert_eq!(parse_key("1"), Some(1));
        assert_eq!(parse_key("18446744073709551615"), Some(u64::MAX));
        for bad in [
            "0",
            "01",
            "-1",
            "+1",
            "abc",
            "",
            "1.0",
            " 1",
            "18446744073709551616",
        ] {
            assert_eq!(parse_key(bad), None, "{bad:?}");
        }
    }
}
