//! The HTTP side: `/api/status` as JSON. (The captive portal and settings UI build on it.)

use std::net::SocketAddr;

use crate::status::SharedStatus;

pub fn serve(listen: SocketAddr, status: SharedStatus, network: crate::network::Network) -> Result<(), String> {
    let _ = network;
    let server = tiny_http::Server::http(listen).map_err(|e| format!("web: cannot listen on {listen}: {e}"))?;
    tracing::info!("web: listening on http://{listen}/api/status");
    std::thread::Builder::new()
        .name("web".into())
        .spawn(move || {
            for request in server.incoming_requests() {
                let response = respond(request.method(), request.url(), &status);
                let _ = request.respond(response);
            }
        })
        .map_err(|e| format!("web: cannot start its thread: {e}"))?;
    Ok(())
}

type Response = tiny_http::Response<std::io::Cursor<Vec<u8>>>;

fn respond(method: &tiny_http::Method, url: &str, status: &SharedStatus) -> Response {
    let path = url.split('?').next().unwrap_or("");
    match (method, path) {
        (tiny_http::Method::Get, "/api/status") => {
            let body = serde_json::to_vec_pretty(&*status.lock().expect("status lock")).unwrap_or_default();
            with_type(tiny_http::Response::from_data(body), "application/json")
        }
        (_, "/api/status") => with_type(
            tiny_http::Response::from_string("only GET is allowed here\n").with_status_code(405),
            "text/plain",
        ),
        _ => with_type(
            tiny_http::Response::from_string("not found; try /api/status\n").with_status_code(404),
            "text/plain",
        ),
    }
}

fn with_type(response: Response, content_type: &str) -> Response {
    let header = tiny_http::Header::from_bytes("Content-Type", content_type).expect("static header is valid");
    response
        .with_header(header)
        .with_header(tiny_http::Header::from_bytes("Cache-Control", "no-store").expect("static header is valid"))
}
