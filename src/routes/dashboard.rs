//! The dashboard: `GET /` serves a single page that reads the JSON API from the browser, with
//! its script and style sheet at `GET /dashboard/app.js` and `GET /dashboard/app.css`.
//!
//! All three are compiled into the binary (no build step, nothing fetched from elsewhere). The
//! page holds no inline script or style, so its Content-Security-Policy allows the page's own
//! origin only; the script writes client-supplied strings (sensor ids) as text, never as HTML.

use warp::http::{HeaderValue, header};
use warp::reply::{Reply, Response};
use warp::{Filter, Rejection};

/// Only this origin may provide scripts, styles and data; no inline code, no framing, no
/// plugins, no `<base>` rewriting, no form posts elsewhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// One embedded file and the content type it is served with.
struct Asset {
    body: &'static str,
    content_type: &'static str,
}

const PAGE: Asset = Asset {
    body: include_str!("dashboard/index.html"),
    content_type: "text/html; charset=utf-8",
};

const SCRIPT: Asset = Asset {
    body: include_str!("dashboard/app.js"),
    content_type: "text/javascript; charset=utf-8",
};

const STYLE: Asset = Asset {
    body: include_str!("dashboard/app.css"),
    content_type: "text/css; charset=utf-8",
};

/// GET / — the page; GET /dashboard/app.js and GET /dashboard/app.css — what it loads.
///
/// `/` matches the empty path only, so it shadows no other route.
pub fn dashboard_get() -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let page = warp::path::end().and(warp::get()).map(|| serve(&PAGE));
    let script = warp::path!("dashboard" / "app.js")
        .and(warp::get())
        .map(|| serve(&SCRIPT));
    let style = warp::path!("dashboard" / "app.css")
        .and(warp::get())
        .map(|| serve(&STYLE));
    page.or(script).unify().or(style).unify()
}

fn serve(asset: &Asset) -> Response {
    let mut response = asset.body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // The files change with the binary: revalidate rather than keep a stale script.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use warp::http::StatusCode;

    async fn get(path: &str) -> Response {
        warp::test::request()
            .path(path)
            .reply(&dashboard_get())
            .await
            .into_response()
    }

    #[tokio::test]
    async fn the_page_and_its_assets_carry_their_type_and_the_security_headers() {
        for (path, content_type) in [
            ("/", "text/html; charset=utf-8"),
            ("/dashboard/app.js", "text/javascript; charset=utf-8"),
            ("/dashboard/app.css", "text/css; charset=utf-8"),
        ] {
            let response = get(path).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            let headers = response.headers();
            assert_eq!(headers[header::CONTENT_TYPE], content_type, "{path}");
            assert_eq!(
                headers[header::CONTENT_SECURITY_POLICY],
                CONTENT_SECURITY_POLICY
            );
            assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
            assert_eq!(headers[header::REFERRER_POLICY], "no-referrer");
        }
    }

    #[tokio::test]
    async fn only_the_exact_paths_match() {
        for path in ["/index.html", "/dashboard", "/dashboard/other.js", "/api/x"] {
            let matched = warp::test::request()
                .path(path)
                .matches(&dashboard_get())
                .await;
            assert!(!matched, "{path} is not a dashboard route");
        }
        let put = warp::test::request()
            .method("PUT")
            .path("/")
            .matches(&dashboard_get())
            .await;
        assert!(!put, "only GET serves the page");
    }

    #[test]
    fn the_policy_allows_no_other_origin_and_no_inline_code() {
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
        assert!(!CONTENT_SECURITY_POLICY.contains("http"));
        assert!(!CONTENT_SECURITY_POLICY.contains('*'));
        assert!(CONTENT_SECURITY_POLICY.starts_with("default-src 'none'"));
    }

    #[test]
    fn the_page_loads_only_its_own_assets_and_holds_no_inline_code() {
        let page = PAGE.body;
        assert!(page.contains(r#"<script src="/dashboard/app.js" defer></script>"#));
        assert!(page.contains(r#"<link rel="stylesheet" href="/dashboard/app.css">"#));
        assert_eq!(
            page.matches("<script").count(),
            1,
            "one script, no inline one"
        );
        assert!(!page.contains("<style"), "no inline style sheet");
        assert!(!page.contains("style="), "no inline style attribute");
        let inline_handler = page.match_indices(" on").any(|(at, _)| {
            let rest = &page[at + 3..];
            let name = rest.bytes().take_while(u8::is_ascii_lowercase).count();
            name > 0 && rest[name..].starts_with('=')
        });
        assert!(!inline_handler, "no inline event handler");
        assert!(!page.contains("//"), "no other origin");
    }
}
