//! `GET /api/preview.jpg`: the live preview's latest picture (asking for it keeps the
//! preview branch running for a few seconds), or 503 with the reason there is none.

use crate::media::preview::{self, Preview};

use super::{Response, respond};

pub fn get(preview: &Preview) -> Response {
    match preview.frame(preview::WAIT) {
        Ok(frame) => {
            let age = frame.taken.elapsed().as_millis().to_string();
            respond(200, "image/jpeg", frame.jpeg.to_vec())
                .with_header(tiny_http::Header::from_bytes("X-Preview-Age-Ms", age).expect("digits are a valid header"))
        }
        Err(why) => {
            let body = serde_json::json!({ "errors": [{ "field": null, "reason": why.reason() }] });
            respond(503, "application/json", body.to_string().into_bytes())
        }
    }
}
