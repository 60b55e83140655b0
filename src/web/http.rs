//! Answers and what is read off a request: the helpers every handler shares. Every answer
//! carries `Cache-Control: no-store` and `X-Content-Type-Options: nosniff`.

use std::net::{IpAddr, SocketAddr};

use super::BODY_LIMIT;
use super::api::{self, ApiError};
use super::probes::{self, Reply};
use super::route::Route;

pub type Response = tiny_http::Response<std::io::Cursor<Vec<u8>>>;

/// The body, refused with 413 when it is declared or found larger than `BODY_LIMIT`.
pub fn read_body(request: &mut tiny_http::Request) -> Result<Vec<u8>, Response> {
    api::read_limited(request, BODY_LIMIT, "form").map_err(|error| {
        let why = error.errors.first().map(|e| e.reason.as_str()).unwrap_or_default();
        text(error.code, format!("{why}; nothing was saved\n"))
    })
}

pub fn header(request: &tiny_http::Request, name: &'static str) -> Option<String> {
    request.headers().iter().find(|h| h.field.equiv(name)).map(|h| h.value.as_str().to_string())
}

/// A path the box does not answer (404), or a method it does not take there (405, with
/// the ones it takes in `Allow`); in JSON under `/api/`. The path is not repeated: a mistyped URL can hold a
/// pasted key.
pub fn refuse(request: &tiny_http::Request, route: &Route) -> Response {
    let api = request.url().starts_with("/api/");
    match route {
        Route::NotAllowed(methods) => {
            let allowed: Vec<&str> = methods.iter().map(|m| m.as_str()).collect();
            let allow = allowed.join(", ");
            let why = format!("{} is not allowed here; this path takes {allow}", request.method());
            let response = if api { ApiError::new(405, why).response() } else { text(405, why + "\n") };
            response.with_header(tiny_http::Header::from_bytes("Allow", allow).expect("methods are a header value"))
        }
        _ if api => {
            let why = format!("no {} call at this path; the API is described in docs/web-api.md", request.method());
            ApiError::new(404, why).response()
        }
        _ => text(404, "no such page here; the status page is /\n".to_string()),
    }
}

pub fn respond(code: u16, content_type: &str, body: Vec<u8>) -> Response {
    let header = |name: &str, value: &str| tiny_http::Header::from_bytes(name, value).expect("valid header");
    tiny_http::Response::from_data(body)
        .with_status_code(code)
        .with_header(header("Content-Type", content_type))
        .with_header(header("Cache-Control", "no-store"))
        // Text answers echo the path asked for: never let a browser take them for HTML.
        .with_header(header("X-Content-Type-Options", "nosniff"))
}

pub fn from_reply(reply: Reply) -> Response {
    let response = respond(reply.code, reply.content_type, reply.body.into_bytes());
    match reply.location {
        // Locations are built from the box's own paths (`safe_next` lets nothing else
        // through); one that is not a header value still never panics a handler.
        Some(location) => response.with_header(
            tiny_http::Header::from_bytes("Location", location)
                .unwrap_or_else(|()| tiny_http::Header::from_bytes("Location", "/").expect("/ is a header value")),
        ),
        None => response,
    }
}

pub fn see_other(location: &str) -> Response {
    let mut reply = probes::redirect_to(location);
    reply.code = 303;
    from_reply(reply)
}

pub fn html(code: u16, body: String) -> Response {
    respond(code, "text/html; charset=utf-8", body.into_bytes())
}

pub fn text(code: u16, body: String) -> Response {
    respond(code, "text/plain; charset=utf-8", body.into_bytes())
}

pub fn cookie_header(value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes("Set-Cookie", value).expect("a cookie is a valid header value")
}

/// The client's address (a loopback one when tiny_http cannot tell).
pub fn client_ip(request: &tiny_http::Request) -> IpAddr {
    request.remote_addr().map_or(IpAddr::from([127, 0, 0, 1]), SocketAddr::ip)
}

/// A query parameter, decoded.
pub fn query_value(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

pub fn percent_encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A name the path carried (`route::Route`), percent-decoded: a section's, a
/// destination's or a network's.
pub fn path_name(raw: &str) -> Result<String, ApiError> {
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| ApiError::new(400, "the name in the path is not UTF-8 once decoded"))?;
    if decoded.is_empty() || decoded.contains('/') {
        return Err(ApiError::new(404, "give one name after the collection's path (no \"/\" in it)"));
    }
    Ok(decoded.into_owned())
}
