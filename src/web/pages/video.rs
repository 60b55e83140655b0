//! Video & audio (`/video`): the settings, what the probe found and the pipeline line, the
//! camera and GPU memory of the boot configuration, and the reboot they may need.

use std::fmt::Write;

use super::{Layout, Show, Tab, api_form, bound, checkbox, escape, input, layout};
use crate::config::{AudioConfig, SAMPLE_RATES, VideoConfig};
use crate::status::Status;

pub struct VideoPage<'a> {
    pub video: &'a VideoConfig,
    pub audio: &'a AudioConfig,
    pub status: &'a Status,
}

/// What a reboot button asks while a destination is live (`lan.js` asks it).
pub(super) const REBOOT_QUESTION: &str =
    "A destination is live: rebooting stops the stream for about a minute. Reboot now?";

pub fn video_page(frame: &Layout, page: &VideoPage) -> String {
    let VideoPage { video, audio, status } = *page;
    let mut out = String::from(
        "<h1>Video &amp; audio</h1><noscript><p class=\"notice\">Changing settings needs JavaScript; \
         what is saved is shown below.</p></noscript><div class=\"grid\"><section class=\"card\"><h2>Video</h2>",
    );
    let mut fields = input("v-source", "source", "Source", "text", &video.source.to_string(), " list=\"v-sources\"");
    fields.push_str(
        "<datalist id=\"v-sources\"><option value=\"auto\"><option value=\"libcamera\">\
         <option value=\"/dev/video0\"><option value=\"test\"></datalist>\
         <p class=\"hint\">auto, libcamera, a device such as /dev/video0, or test (a test picture).</p>",
    );
    fields.push_str("<label for=\"v-encoder\">Encoder</label><select id=\"v-encoder\" name=\"encoder\">");
    for (value, label) in [
        ("auto", "Automatic"),
        ("camera", "The camera's own H.264"),
        ("v4l2", "The Pi's hardware encoder"),
        ("x264", "Software (x264)"),
    ] {
        let selected = if video.encoder.to_string() == value { " selected" } else { "" };
        let _ = write!(fields, "<option value=\"{value}\"{selected}>{label}</option>");
    }
    fields.push_str("</select><div class=\"pair\">");
    fields.push_str(&number("v-width", "width", "Width (px)", video.width));
    fields.push_str(&number("v-height", "height", "Height (px)", video.height));
    fields.push_str("</div><div class=\"pair\">");
    fields.push_str(&number("v-framerate", "framerate", "Frame rate (fps)", video.framerate));
    fields.push_str(&number("v-bitrate", "bitrate_kbps", "Bitrate (kbit/s)", video.bitrate_kbps));
    fields.push_str("</div>");
    fields.push_str(&checkbox(
        "v-adaptive",
        "adaptive",
        "Follow the uplink: lower the bitrate on a weak network",
        video.adaptive,
    ));
    fields.push_str(&number("v-min-bitrate", "min_bitrate_kbps", "Lowest bitrate (kbit/s)", video.min_bitrate_kbps));
    fields.push_str(&input(
        "v-params",
        "encoder_params",
        "Encoder parameters (advanced)",
        "text",
        &video.encoder_params,
        "",
    ));
    fields.push_str(SAVE);
    out.push_str(&api_form("PUT", "/api/settings/video", "", &fields));
    out.push_str("</section><section class=\"card\"><h2>Audio</h2>");
    let mut fields =
        input("a-source", "source", "Microphone", "text", &audio.source.to_string(), " list=\"a-sources\"");
    fields.push_str(
        "<datalist id=\"a-sources\"><option value=\"auto\"><option value=\"none\"><option value=\"hw:1\">\
         <option value=\"test\"></datalist><p class=\"hint\">auto, none (silence is sent), an ALSA device \
         such as hw:1, or test (a tone).</p>",
    );
    fields.push_str(
        "<label for=\"a-rate\">Sample rate (Hz)</label><select id=\"a-rate\" name=\"sample_rate\" data-number>",
    );
    for rate in SAMPLE_RATES {
        let selected = if rate == audio.sample_rate { " selected" } else { "" };
        let _ = write!(fields, "<option value=\"{rate}\"{selected}>{rate}</option>");
    }
    fields.push_str("</select>");
    fields.push_str(&number("a-bitrate", "bitrate_kbps", "Bitrate (kbit/s)", audio.bitrate_kbps));
    fields.push_str(SAVE);
    out.push_str(&api_form("PUT", "/api/settings/audio", "", &fields));
    out.push_str("</section></div>");

    out.push_str(
        "<section class=\"card\"><h2>What the box found</h2><div id=\"probe\" data-load=\"/api/probe\">\
         <p class=\"hint\">Ask the box with JavaScript on.</p></div><h3>The pipeline running now</h3>",
    );
    let _ = write!(
        out,
        "<pre class=\"line\">{}</pre></section>",
        bound("pipeline", Show::Text, status.pipeline.as_deref().into())
    );

    out.push_str(
        "<section class=\"card\"><h2>Camera and GPU memory</h2><p class=\"hint\">In the boot configuration: \
         they take effect after a reboot.</p>",
    );
    // The choices and the values in force come from GET /api/boot-config.
    let mut fields = String::from(
        "<p class=\"hint\" id=\"b-where\">Reading config.txt…</p><label for=\"b-camera\">Camera</label>\
         <select id=\"b-camera\" name=\"camera\" data-options=\"camera_values\" data-keep></select>",
    );
    fields.push_str(&input("b-gpu", "gpu_mem", "GPU memory (MB)", "number", "", " inputmode=\"numeric\" data-keep"));
    fields.push_str(SAVE);
    out.push_str(&api_form("PUT", "/api/boot-config", " data-load=\"/api/boot-config\"", &fields));
    out.push_str(&reboot_form(status));
    out.push_str("</section>");
    layout(frame, Tab::Video, " data-refresh", &out)
}

const SAVE: &str = "<p><button type=\"submit\" class=\"primary\" disabled>Save</button></p>";

fn number(id: &str, name: &str, label: &str, value: u32) -> String {
    format!("<div>{}</div>", input(id, name, label, "number", &value.to_string(), " inputmode=\"numeric\""))
}

/// "Reboot needed" and the reboot button (asks first while a destination is live).
pub(super) fn reboot_form(status: &Status) -> String {
    let needed = status.update.reboot_needed.as_deref();
    let hidden = if needed.is_some() { "" } else { " hidden" };
    let button = format!(
        "<p class=\"problem\">Reboot needed: {}</p>\
         <button type=\"submit\" class=\"danger\" disabled>Reboot now</button>",
        bound("update.reboot_needed", Show::Text, needed.into())
    );
    let attrs = format!(
        " data-body='{{}}' data-reboot=\"{}\" data-done=\"Rebooting: this page answers again in about a minute.\" data-if=\"update.reboot_needed\"{hidden}",
        escape(REBOOT_QUESTION)
    );
    api_form("POST", "/api/reboot", &attrs, &button)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_a_good_page, heavy_status, layout_for_tests};
    use super::*;
    use crate::config::{AudioSource, Config, VideoSource};

    #[test]
    fn the_page_shows_the_settings_and_a_needed_reboot() {
        let mut config = Config::default();
        config.video.source = VideoSource::Device("/dev/video2".into());
        config.video.encoder_params = "<\"&'>".into();
        config.audio.source = AudioSource::Alsa("hw:1,0".into());
        config.audio.sample_rate = 44100;
        let status = heavy_status();
        let page =
            video_page(&layout_for_tests(), &VideoPage { video: &config.video, audio: &config.audio, status: &status });
        assert_a_good_page(&page);
        assert!(page.contains("name=\"source\" value=\"/dev/video2\""));
        assert!(page.contains("name=\"source\" value=\"hw:1,0\""));
        assert!(page.contains("<option value=\"44100\" selected>"));
        assert!(page.contains(&format!("name=\"bitrate_kbps\" value=\"{}\"", config.video.bitrate_kbps)));
        assert!(
            page.contains("name=\"adaptive\" checked>") && page.contains("name=\"min_bitrate_kbps\" value=\"300\"")
        );
        assert!(page.contains("rtmp2sink location=rtmp://h/live/****"));
        assert!(page.contains("data-action=\"/api/reboot\" data-body='{}' data-reboot=\"A destination is live"));
        assert!(page.contains("data-if=\"update.reboot_needed\">"), "shown: a reboot is needed");

        let quiet = Status::default();
        let page =
            video_page(&layout_for_tests(), &VideoPage { video: &config.video, audio: &config.audio, status: &quiet });
        assert!(page.contains("data-if=\"update.reboot_needed\" hidden>"));
    }
}
