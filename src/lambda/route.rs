//! Which requests the function serves: `DELETE /picus/{key}`, and nothing else (405).
//!
//! The path is the one the client asked for (`lambda_http`'s raw path): an ALB event's `path`,
//! an API Gateway HTTP API event's `rawPath` without its stage prefix (a named stage's
//! `rawPath` starts with `/{stage}`; the `$default` stage adds nothing).

use lambda_http::http::Method;

/// What a request asks of the function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `DELETE /picus/{key}`, with the key exactly as it appears in the path. Whether it names
    /// an item (a canonical decimal id) is the service's handler's business, as on the service.
    Delete(String),
    /// Any other method or path: 405, the function serves nothing else.
    NotServed,
}

/// The route of a request, from its method and path (without query string).
pub fn route(method: &Method, path: &str) -> Route {
    if *method != Method::DELETE {
        return Route::NotServed;
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["picus", key] if !key.is_empty() => Route::Delete((*key).to_owned()),
        _ => Route::NotServed,
    }
}

/// `raw_path` without the API Gateway stage's prefix: `/{stage}/picus/1` becomes `/picus/1`
/// when `stage` is a named stage. `None` (an ALB event) and `$default` change nothing.
pub fn without_stage<'a>(raw_path: &'a str, stage: Option<&str>) -> &'a str {
    match stage {
        Some(stage) if stage != "$default" && !stage.is_empty() => raw_path
            .strip_prefix('/')
            .and_then(|rest| rest.strip_prefix(stage))
            .filter(|rest| rest.starts_with('/'))
            .unwrap_or(raw_path),
        _ => raw_path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_delete_of_one_item_is_served() {
        let delete = Method::DELETE;
        assert_eq!(route(&delete, "/picus/7"), Route::Delete("7".into()));
        // Malformed keys still reach the handler, which answers 404 as the service does.
        assert_eq!(route(&delete, "/picus/abc"), Route::Delete("abc".into()));
        for path in [
            "/picus",
            "/picus/",
            "/picus/get/7",
            "/api/stats",
            "/",
            "/picus/7/x",
        ] {
            assert_eq!(route(&delete, path), Route::NotServed, "{path}");
        }
        for method in [Method::GET, Method::POST, Method::PUT, Method::HEAD] {
            assert_eq!(route(&method, "/picus/7"), Route::NotServed, "{method}");
        }
    }

    #[test]
    fn a_named_stage_is_stripped_and_only_as_a_whole_segment() {
        assert_eq!(without_stage("/picus/7", None), "/picus/7");
        assert_eq!(without_stage("/picus/7", Some("$default")), "/picus/7");
        assert_eq!(without_stage("/prod/picus/7", Some("prod")), "/picus/7");
        assert_eq!(without_stage("/picus/7", Some("prod")), "/picus/7");
        assert_eq!(
            without_stage("/production/picus/7", Some("prod")),
            "/production/picus/7"
        );
    }
}
