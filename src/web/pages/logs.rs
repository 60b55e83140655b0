//! Logs (`/logs`): the service's recent lines (masked where they are kept), newest last.

use std::fmt::Write;

use super::{Layout, Tab, escape, layout};

/// How many lines the page asks `/api/logs` for.
pub const LOG_LINES: usize = 300;

/// The newest lines that fit in this many bytes are rendered (the page stays under 60 KB).
const LOG_BYTES: usize = 32 * 1024;

pub fn logs_page(frame: &Layout, lines: &[String]) -> String {
    let mut out = format!(
        "<h1>Logs</h1><p class=\"hint\">The last {LOG_LINES} lines of the service, newest last.</p>\
         <p><button type=\"button\" id=\"log-refresh\" disabled>Refresh</button></p>\
         <pre class=\"log\" id=\"log\" data-load=\"/api/logs?lines={LOG_LINES}\">"
    );
    let mut shown = Vec::new();
    let mut size = 0;
    for line in lines.iter().rev().take(LOG_LINES) {
        let line = escape(line);
        size += line.len() + 1;
        if size > LOG_BYTES {
            break;
        }
        shown.push(line);
    }
    for line in shown.iter().rev() {
        let _ = writeln!(out, "{line}");
    }
    if lines.is_empty() {
        out.push_str("No lines yet.");
    }
    out.push_str("</pre>");
    layout(frame, Tab::Logs, "", &out)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_a_good_page, layout_for_tests};
    use super::*;

    #[test]
    fn the_last_lines_make_a_good_page() {
        let lines: Vec<String> = (0..400).map(|i| format!("line {i:03} <\"&'> {}", "·".repeat(20))).collect();
        let page = logs_page(&layout_for_tests(), &lines);
        assert_a_good_page(&page);
        assert!(!page.contains("line 099 ") && page.contains("line 100 ") && page.contains("line 399 "));
        assert!(page.find("line 100").unwrap() < page.find("line 399").unwrap(), "newest last");
        let long: Vec<String> = (0..400).map(|i| format!("line {i:03} <\"&'> {}", "x".repeat(400))).collect();
        let page = logs_page(&layout_for_tests(), &long);
        assert_a_good_page(&page);
        assert!(page.contains("line 399 "), "the newest kept");
    }
}
