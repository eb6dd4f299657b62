//! The methods each resource answers, for the `Allow` header every `405` carries (RFC 9110
//! section 15.5.6). Every `GET` route also answers `HEAD` (see [`crate::server::service`]).

use crate::metrics::route_template;

/// The `Allow` value of the resource at `path`; `None` for a path no route serves (a 404).
pub fn allowed_methods(path: &str) -> Option<&'static str> {
    match route_template(path) {
        "/api/temperature" => Some("PUT"),
        "/api/v2/write" | "/write" | "/picus/put" => Some("POST"),
        "/picus/{key}" => Some("DELETE"),
        "other" => None,
        _ => Some("GET, HEAD"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_resource_names_its_methods() {
        assert_eq!(allowed_methods("/api/stats"), Some("GET, HEAD"));
        assert_eq!(allowed_methods("/api/sensors/107"), Some("GET, HEAD"));
        assert_eq!(allowed_methods("/"), Some("GET, HEAD"));
        assert_eq!(allowed_methods("/api/temperature"), Some("PUT"));
        assert_eq!(allowed_methods("/write"), Some("POST"));
        assert_eq!(allowed_methods("/picus/put"), Some("POST"));
        assert_eq!(allowed_methods("/picus/7"), Some("DELETE"));
        assert_eq!(allowed_methods("/picus/get/7"), Some("GET, HEAD"));
        assert_eq!(allowed_methods("/nowhere"), None);
    }
}
