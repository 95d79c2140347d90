//! The web console at `/ui`: one HTML page, one script and one stylesheet, built into the binary
//! (`include_str!`) so it works with no internet and no files beside the server. Plain
//! hand-written JavaScript over the JSON API, no build step.
//!
//! The pages need no token: the script asks for one and sends it as `Authorization: Bearer` on
//! every API call, keeping it in `sessionStorage` (never in a URL nor a log). Every answer here
//! carries a strict Content-Security-Policy ([`CONTENT_SECURITY_POLICY`]): scripts and styles
//! from this server only, nothing inline, no frames, connections to this server only; so even
//! text that slipped into the page as markup could not run.

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, ErrorBody};

/// The policy of every `/ui` answer: nothing but this server's own script, style and API.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

const INDEX: &str = include_str!("console/index.html");
const SCRIPT: &str = include_str!("console/app.js");
const STYLE: &str = include_str!("console/app.css");

/// The console's assets: name, content type, text.
const ASSETS: &[(&str, &str, &str)] = &[
    ("app.js", "text/javascript; charset=utf-8", SCRIPT),
    ("app.css", "text/css; charset=utf-8", STYLE),
];

fn page(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
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
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // A new binary serves new assets at the same names: revalidate rather than keep old ones.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The console's page.
///
/// `GET /ui` (no auth: the page holds no data; it asks for a token).
#[utoipa::path(get, path = "/ui", tag = "console", operation_id = "console", security(),
    responses((status = 200, description = "The console's HTML page, with a strict \
        Content-Security-Policy", content_type = "text/html")))]
pub async fn serve_page() -> Response {
    page("text/html; charset=utf-8", INDEX)
}

/// A script or stylesheet of the console.
///
/// `GET /ui/{asset}`: `app.js` or `app.css`; 404 for another name.
#[utoipa::path(get, path = "/ui/{asset}", tag = "console", operation_id = "consoleAsset",
    security(),
    params(("asset" = String, Path, description = "`app.js` or `app.css`")),
    responses(
        (status = 200, description = "The asset (JavaScript or CSS)", body = String),
        (status = 404, description = "No such asset", body = ErrorBody)))]
pub async fn serve_asset(Path(asset): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == asset) {
        Some((_, content_type, body)) => page(content_type, body),
        None => ApiError::NotFound("no such console asset".into()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_its_own_assets_and_nothing_inline() {
        assert!(INDEX.contains(r#"<script src="/ui/app.js" defer></script>"#));
        assert!(INDEX.contains(r#"<link rel="stylesheet" href="/ui/app.css">"#));
        assert!(!INDEX.contains("style="), "an inline style");
        for handler in ["onclick=", "onload=", "onerror=", "onsubmit="] {
            assert!(!INDEX.contains(handler), "an inline handler: {handler}");
        }
        assert_eq!(INDEX.matches("<script").count(), 1);
        assert!(
            !INDEX.contains("http://") && !INDEX.contains("https://"),
            "no CDN"
        );
    }

    #[test]
    fn the_script_never_parses_markup() {
        for forbidden in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "console.log",
            "new EventSource",
        ] {
            assert!(!SCRIPT.contains(forbidden), "{forbidden} in app.js");
        }
    }
}
