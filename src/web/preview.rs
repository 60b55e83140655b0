//! `GET /api/preview.jpg`: the live preview's latest picture (asking for it keeps the
//! preview branch running for a few seconds), or 503 with the reason there is none.

use crate::media::preview;

use super::api::ApiError;
use super::{Portal, Response, respond};

pub fn get(portal: &Portal) -> Result<Response, ApiError> {
    let frame = portal.preview.frame(preview::WAIT).map_err(|why| ApiError::new(503, why.reason()))?;
    let age = frame.taken.elapsed().as_millis().to_string();
    let age = tiny_http::Header::from_bytes("X-Preview-Age-Ms", age).expect("digits are a valid header value");
    Ok(respond(200, "image/jpeg", frame.jpeg.to_vec()).with_header(age))
}
