//! `GET` of the LAN pages: gathers what each page shows from the portal (the status, the
//! settings in force, the session's CSRF token) and renders it with `pages`.
//! API boundary: `page`, called by the router for a logged-in session only.

use std::time::{SystemTime, UNIX_EPOCH};

use super::auth::Login;
use super::pages::{self, Layout, Tab, UpdatePage, VideoPage};
use super::{Portal, Response, html};

pub fn page(portal: &Portal, tab: Tab, login: &Login) -> Response {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let frame = Layout { box_name: hostname.trim(), csrf: login.csrf.expose() };
    let status = portal.board.now();
    let config = portal.settings.get().config.clone();
    let body = match tab {
        Tab::Status => pages::status_page(&frame, &status),
        Tab::Destinations => pages::destinations_page(&frame, &config.destinations, &status.destinations),
        Tab::Video => {
            pages::video_page(&frame, &VideoPage { video: &config.video, audio: &config.audio, status: &status })
        }
        Tab::Wifi => pages::wifi_page(&frame, &status.network, &config.network),
        Tab::Update => {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            pages::update_page(&frame, &UpdatePage { status: &status, now })
        }
        Tab::Logs => pages::logs_page(&frame, &crate::logging::recent(pages::LOG_LINES)),
    };
    html(200, body)
}
