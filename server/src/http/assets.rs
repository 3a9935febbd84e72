//! The browser pages every node serves from its own binary: the operator dashboard at
//! `/dashboard` (from `server/assets/dashboard/`) and the play page at `/play` (from
//! `server/assets/play/`).
//!
//! Why embedded (`rust-embed`, with `debug-embed` so debug builds embed too): running
//! `ludus-server` needs no Node, no asset directory and no path configuration, and a test runs
//! exactly the bytes a release serves. The pages are plain files checked in as they are served
//! (no build step); they hold no secret, and the dashboard asks the operator for the token.
//!
//! Caching: every answer carries the file's SHA-256 as a strong `ETag` and `Cache-Control:
//! no-cache`, so a browser revalidates (a `304` without a body) and never runs a page older
//! than its server.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use rust_embed::{EmbeddedFile, RustEmbed};

/// The operator dashboard's files.
#[derive(RustEmbed)]
#[folder = "assets/dashboard/"]
struct Dashboard;

/// The play page's files.
#[derive(RustEmbed)]
#[folder = "assets/play/"]
struct Play;

/// What the dashboard may load and who may frame it: its own files only, and nobody (an
/// operator's clicks cannot be borrowed by a page that frames it).
const DASHBOARD_POLICY: &str = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

/// The answer for one embedded file, or 304 when the browser's copy is current; `policy` is
/// the page's `Content-Security-Policy`, if it has one.
fn serve(
    file: Option<EmbeddedFile>,
    request: &HttpRequest,
    policy: Option<&'static str>,
) -> HttpResponse {
    let Some(file) = file else {
        return super::ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no page at {}", request.path()),
        )
        .error_response();
    };
    let etag = format!(
        "\"{}\"",
        file.metadata
            .sha256_hash()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect::<String>()
    );
    let current = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == etag));
    let mut response = if current {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"));
    if let Some(policy) = policy {
        response.insert_header((header::CONTENT_SECURITY_POLICY, policy));
    }
    if current {
        return response.finish();
    }
    let mime = file.metadata.mimetype();
    let content_type = if mime.starts_with("text/") || mime.ends_with("javascript") {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_owned()
    };
    response
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_str(&content_type)
                .unwrap_or(HeaderValue::from_static("application/octet-stream")),
        ))
        .body(file.data.into_owned())
}

async fn dashboard_index(request: HttpRequest) -> HttpResponse {
    serve(
        Dashboard::get("index.html"),
        &request,
        Some(DASHBOARD_POLICY),
    )
}

async fn dashboard_file(request: HttpRequest, path: web::Path<String>) -> HttpResponse {
    let file = if path.is_empty() {
        "index.html"
    } else {
        path.as_str()
    };
    serve(Dashboard::get(file), &request, Some(DASHBOARD_POLICY))
}

async fn play_index(request: HttpRequest) -> HttpResponse {
    serve(Play::get("index.html"), &request, None)
}

async fn play_file(request: HttpRequest, path: web::Path<String>) -> HttpResponse {
    let file = if path.is_empty() {
        "index.html"
    } else {
        path.as_str()
    };
    serve(Play::get(file), &request, None)
}

/// Registers `/dashboard` (every listener: operators reach it wherever their routes are).
pub fn dashboard_routes(config: &mut web::ServiceConfig) {
    config
        .route("/dashboard", web::get().to(dashboard_index))
        .route("/dashboard/{file:.*}", web::get().to(dashboard_file));
}

/// Registers `/play` (listeners that serve players).
pub fn play_routes(config: &mut web::ServiceConfig) {
    config
        .route("/play", web::get().to(play_index))
        .route("/play/{file:.*}", web::get().to(play_file));
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::{call_service, init_service, TestRequest};
    use actix_web::App;

    fn header(headers: &actix_web::http::header::HeaderMap, name: header::HeaderName) -> &str {
        headers
            .get(&name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }

    #[actix_web::test]
    async fn pages_are_served_with_their_type_and_revalidated_by_etag() {
        let app = init_service(App::new().configure(dashboard_routes)).await;
        let response = call_service(&app, TestRequest::get().uri("/dashboard").to_request()).await;
        assert_eq!(response.status(), StatusCode::OK);
        let headers = response.headers();
        assert_eq!(
            header(headers, header::CONTENT_TYPE),
            "text/html; charset=utf-8"
        );
        assert_eq!(header(headers, header::CACHE_CONTROL), "no-cache");
        assert!(header(headers, header::CONTENT_SECURITY_POLICY).contains("frame-ancestors 'none'"));
        let etag = header(headers, header::ETAG).to_owned();
        let again = TestRequest::get()
            .uri("/dashboard/")
            .insert_header((header::IF_NONE_MATCH, etag))
            .to_request();
        assert_eq!(
            call_service(&app, again).await.status(),
            StatusCode::NOT_MODIFIED
        );
        let script = TestRequest::get()
            .uri("/dashboard/dashboard.js")
            .to_request();
        let script = call_service(&app, script).await;
        assert_eq!(
            header(script.headers(), header::CONTENT_TYPE),
            "text/javascript; charset=utf-8"
        );
        let missing = TestRequest::get()
            .uri("/dashboard/../Cargo.toml")
            .to_request();
        assert_eq!(
            call_service(&app, missing).await.status(),
            StatusCode::NOT_FOUND
        );
    }
}
