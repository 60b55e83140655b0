//! The LAN pages' JSON API and its door, against the real binary (and a real nginx-rtmp
//! where streams are involved): every route refused without a session, every change
//! without its CSRF token, password guesses limited; settings and destinations changed,
//! validated by the config files' rules and saved whole.

mod app;
mod peers;

use std::time::Duration;

use app::{Client, Service, destination, exchange, free_port, settings_with_password};
use peers::RtmpServer;
use serde_json::json;

const PASSWORD: &str = "lan-password-1";
const KEY: &str = "sk-lan-0123456789";

fn configured(destinations: &[(&str, &str, &str)]) -> Service {
    let web = free_port();
    Service::start(&settings_with_password(web, destinations, PASSWORD), web)
}

/// A GET as a browser without a session sends it.
fn anonymous(port: u16, method: &str, path: &str, headers: &str) -> app::Reply {
    let body = if method == "GET" { "" } else { "{}" };
    let head = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}{headers}",
        body.len()
    );
    exchange(port, &head, body.as_bytes())
}

const API: &[(&str, &str)] = &[
    ("GET", "/api/status"),
    ("GET", "/api/session"),
    ("GET", "/api/settings"),
    ("PUT", "/api/settings/video"),
    ("GET", "/api/destinations"),
    ("POST", "/api/destinations"),
    ("PUT", "/api/destinations/a"),
    ("DELETE", "/api/destinations/a"),
    ("GET", "/api/presets"),
    ("GET", "/api/probe"),
    ("POST", "/api/password"),
    ("GET", "/api/no-such-call"),
    ("GET", "/api/preview.jpg"),
    ("POST", "/api/reboot"),
    ("GET", "/api/update"),
    ("POST", "/api/update/upload"),
    ("GET", "/api/boot-config"),
    ("PUT", "/api/boot-config"),
    ("GET", "/api/logs"),
    ("GET", "/api/wifi"),
    ("POST", "/api/wifi/scan"),
    ("POST", "/api/wifi/networks"),
    ("PUT", "/api/wifi/networks/a"),
    ("DELETE", "/api/wifi/networks/a"),
    ("PUT", "/api/wifi/access-point"),
];

#[test]
fn every_route_needs_a_session_and_every_change_its_csrf_token() {
    let service = configured(&[("a", "rtmp://127.0.0.1:9/live", KEY)]);
    let port = service.web_port;
    service.wait_for("the service", Duration::from_secs(20), |_| true);
    for &(method, path) in API {
        let reply = anonymous(port, method, path, "");
        assert_eq!(reply.code, 401, "{method} {path}: {}", reply.body);
        assert!(reply.json()["errors"][0]["reason"].as_str().unwrap().contains("log in first"), "{}", reply.body);
        let forged = anonymous(port, method, path, &format!("\r\nCookie: msl_session={}", "ab".repeat(32)));
        assert_eq!(forged.code, 401, "{method} {path} with a made-up cookie");
    }
    for page in ["/", "/destinations", "/wifi", "/update", "/logs", "/video"] {
        let reply = anonymous(port, "GET", page, "");
        assert_eq!(reply.code, 303, "{page}");
        let next = format!("/login?next=%2F{}", page.trim_start_matches('/'));
        assert_eq!(reply.header("Location"), Some(next.as_str()), "{page}");
    }

    let client = service.log_in(PASSWORD);
    let changes = API.iter().filter(|(method, _)| *method != "GET");
    for (method, path) in changes {
        let head = |csrf: &str| {
            format!(
                "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nCookie: {}\r\nContent-Type: application/json\r\n\
                 Content-Length: 2{csrf}",
                client.cookie
            )
        };
        let without = exchange(port, &head(""), b"{}");
        let wrong = exchange(port, &head(&format!("\r\nX-CSRF-Token: {}", "0".repeat(64))), b"{}");
        let elsewhere =
            exchange(port, &head(&format!("\r\nX-CSRF-Token: {}\r\nOrigin: http://evil.example", client.csrf)), b"{}");
        for (what, reply) in [("no token", without), ("a wrong token", wrong), ("another site", elsewhere)] {
            assert_eq!(reply.code, 403, "{method} {path} with {what}: {}", reply.body);
            assert!(reply.json()["errors"][0]["reason"].as_str().unwrap().contains("CSRF"), "{}", reply.body);
        }
    }
    assert_eq!(client.get("/api/settings").code, 200, "a read needs no token");
    let unknown = client.get("/api/no-such-call");
    assert_eq!(unknown.code, 404);
    assert!(unknown.json()["errors"][0]["reason"].is_string());
    // A path the box answers, with a method it does not take there: 405, and which it takes.
    let wrong_method = client.send("PUT", "/api/status", &json!({}));
    assert_eq!(wrong_method.code, 405, "{}", wrong_method.body);
    assert_eq!(wrong_method.header("Allow"), Some("GET, HEAD"));
    assert!(wrong_method.json()["errors"][0]["reason"].as_str().unwrap().contains("takes GET, HEAD"));

    // Logged out by the pages' form (no JavaScript: the token as the field `csrf`): the
    // cookie opens nothing any more.
    let form_logout = |csrf: &str| {
        let body = format!("csrf={csrf}");
        let head = format!(
            "POST /logout HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nCookie: {}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}",
            client.cookie,
            body.len()
        );
        exchange(port, &head, body.as_bytes())
    };
    assert_eq!(form_logout(&"0".repeat(64)).code, 403, "a wrong token in the form");
    assert_eq!(client.get("/api/settings").code, 200, "still logged in");
    let out = form_logout(&client.csrf);
    assert_eq!((out.code, out.header("Location")), (303, Some("/login")));
    assert!(out.header("Set-Cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(client.get("/api/settings").code, 401);
}

#[test]
fn the_session_cookie_is_http_only_strict_and_expiring_and_a_wrong_password_opens_nothing() {
    let service = configured(&[]);
    let port = service.web_port;
    service.wait_for("the service", Duration::from_secs(20), |_| true);
    let login = |password: &str, next: &str| {
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("password", password)
            .append_pair("next", next)
            .finish();
        let head = format!(
            "POST /login HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}",
            body.len()
        );
        exchange(port, &head, body.as_bytes())
    };
    let page = anonymous(port, "GET", "/login?next=%2Fwifi", "");
    assert_eq!(page.code, 200);
    assert!(page.body.contains("name=\"next\" value=\"/wifi\"") && page.body.contains("makespacelive-reset-password"));

    let wrong = login("not-the-password", "/wifi");
    assert_eq!(wrong.code, 401);
    assert!(wrong.header("Set-Cookie").is_none());
    assert!(wrong.body.contains("this is not the device password"), "{}", wrong.body);
    assert!(!wrong.body.contains("not-the-password"));

    let right = login(PASSWORD, "/wifi");
    assert_eq!((right.code, right.header("Location")), (303, Some("/wifi")));
    let cookie = right.header("Set-Cookie").unwrap();
    for flag in ["msl_session=", "HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=86400"] {
        assert!(cookie.contains(flag), "{flag} in {cookie}");
    }
    let elsewhere = login(PASSWORD, "//evil.example/");
    assert_eq!(elsewhere.header("Location"), Some("/"), "never sent off the box");
    // The review's two: a TAB a browser drops (`/\t/evil.example/` is `//evil.example/`
    // to it), and a `next` outside ASCII, whose Location header panicked the handler
    // thread (four of them and the port was dead): that one sent more times than there
    // are handlers (fewer of the others: the box checks 20 passwords a minute).
    for (next, times) in [("/é", 6), ("/\t/evil.example/", 1), ("/\\evil.example", 1), ("/wifi\r\nSet-Cookie: x=1", 1)]
    {
        for _ in 0..times {
            let reply = login(PASSWORD, next);
            assert_eq!((reply.code, reply.header("Location")), (303, Some("/")), "{next:?}");
        }
        assert_eq!(
            anonymous(
                port,
                "GET",
                &format!("/login?next={}", form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()),
                ""
            )
            .code,
            200
        );
    }
    assert_eq!(login(PASSWORD, "/video?tab=1").header("Location"), Some("/video?tab=1"), "the box's own paths pass");
    assert!(!service.output().contains(PASSWORD) && !service.output().contains("panicked"), "{}", service.output());
}

/// DNS rebinding, the review's attack: a page on `rebind.evil.example` whose name was made
/// to point at the box logged in and changed the update settings. A configured box answers
/// only its own names and addresses (421 otherwise); the phones' probe paths still answer
/// on any name.
#[test]
fn a_foreign_host_name_is_refused_but_the_probes_answer() {
    let service = configured(&[("a", "rtmp://127.0.0.1:9/live", KEY)]);
    let port = service.web_port;
    let client = service.log_in(PASSWORD);
    let as_host = |host: &str, request: &str| {
        let head = format!(
            "{request} HTTP/1.0\r\nHost: {host}\r\nCookie: {}\r\nX-CSRF-Token: {}\r\n\
             Content-Type: application/json\r\nContent-Length: 2",
            client.cookie, client.csrf
        );
        exchange(port, &head, b"{}")
    };
    for request in ["GET /api/status", "GET /", "POST /login", "PUT /api/settings/update", "GET /api/settings"] {
        let reply = as_host("rebind.evil.example", request);
        assert_eq!(reply.code, 421, "{request}: {}", reply.body);
        assert!(!reply.body.contains(KEY) && !reply.body.contains("\"state\""), "{request}: {}", reply.body);
    }
    assert_eq!(as_host("rebind.evil.example", "GET /generate_204").code, 204, "a probe on any name");
    for own in
        [format!("127.0.0.1:{port}"), "makespacelive.local".into(), "makespacelive-2.local".into(), "localhost".into()]
    {
        assert_eq!(as_host(&own, "GET /api/status").code, 200, "{own}");
    }
    assert_eq!(as_host("makespacelive-x.local", "GET /api/status").code, 421);
}

#[test]
fn wrong_passwords_make_the_client_wait_even_for_the_right_one() {
    let service = configured(&[]);
    let port = service.web_port;
    service.wait_for("the service", Duration::from_secs(20), |_| true);
    for n in 0..5 {
        let refused = Client::log_in(port, &format!("guess-{n}")).err().expect("a wrong password is refused");
        assert_eq!(refused.code, 401);
    }
    let held = Client::log_in(port, PASSWORD).err().expect("held back: the sixth try waits");
    assert_eq!(held.code, 429, "{}", held.body);
    let wait: u64 = held.header("Retry-After").unwrap().parse().unwrap();
    assert!((20..=30).contains(&wait), "{wait}");
    assert!(held.body.contains("too many wrong passwords"), "{}", held.body);
    assert!(service.output().matches("a wrong device password from").count() == 5, "{}", service.output());
}

#[test]
fn settings_are_checked_by_the_config_files_rules_named_by_field_and_saved_whole() {
    let service = configured(&[("a", "rtmp://127.0.0.1:9/live", KEY)]);
    let client = service.log_in(PASSWORD);
    let file = service.data_dir().join("config.toml");
    let before = std::fs::read_to_string(&file).unwrap();

    let settings = client.get("/api/settings");
    assert_eq!(settings.code, 200);
    assert!(!settings.body.contains(KEY) && !settings.body.contains("argon2"), "{}", settings.body);
    let settings = settings.json();
    assert_eq!(settings["destinations"][0]["key_set"], true);
    assert_eq!(settings["web"]["password_hash_set"], true);

    for (body, field, says) in [
        (json!({"bitrate_kbps": 5}), "video.bitrate_kbps", "between 100 and 50000"),
        (json!({"width": "wide"}), "video.width", "invalid type"),
        (json!({"width": 641}), "video.width", "must be even"),
        (json!({"source": "webcam"}), "video.source", "camera"),
        (json!({"fps": 30}), "video.fps", "unknown field"),
    ] {
        let reply = client.send("PUT", "/api/settings/video", &body);
        assert_eq!(reply.code, 400, "{body}: {}", reply.body);
        let error = &reply.json()["errors"][0];
        assert_eq!(error["field"], field, "{body}: {}", reply.body);
        assert!(error["reason"].as_str().unwrap().contains(says), "{body}: {}", reply.body);
    }
    let wrong_section = client.send("PUT", "/api/settings/web", &json!({"listen": "0.0.0.0:1"}));
    assert_eq!(wrong_section.code, 404);
    assert!(wrong_section.body.contains("video, audio, update"), "{}", wrong_section.body);
    let not_json = client.send_raw("PUT", "/api/settings/video", "text/plain", b"bitrate=1", &[]);
    assert_eq!(not_json.code, 415);
    let huge = client.send_raw("PUT", "/api/settings/video", "application/json", &vec![b' '; 70_000], &[]);
    assert_eq!(huge.code, 413);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before, "nothing refused was saved");

    let saved = client.send("PUT", "/api/settings/video", &json!({"bitrate_kbps": 1200, "framerate": 25}));
    assert_eq!(saved.code, 200, "{}", saved.body);
    assert_eq!(saved.json()["video"]["bitrate_kbps"], 1200);
    let text = std::fs::read_to_string(&file).unwrap();
    let table: toml::Table = toml::from_str(&text).unwrap();
    assert_eq!(table["video"]["bitrate_kbps"].as_integer(), Some(1200));
    assert_eq!(table["video"]["framerate"].as_integer(), Some(25));
    assert_eq!(table["destinations"][0]["key"].as_str(), Some(KEY), "the key stays");
    // The service reloaded with them: its pipeline line has the new rate.
    service.wait_for("the new bitrate in the pipeline", Duration::from_secs(20), |s| {
        s["pipeline"].as_str().is_some_and(|p| p.contains("bitrate=1200"))
    });
    let update = client.send("PUT", "/api/settings/update", &json!({"source": "manifest"}));
    assert_eq!(update.code, 400);
    assert!(update.body.contains("needs update.manifest_url"), "{}", update.body);
}

#[test]
fn a_destination_added_from_the_api_goes_live_and_a_disabled_one_stops() {
    let server = RtmpServer::start();
    let service = configured(&[("a", &server.url(), "ka")]);
    let client = service.log_in(PASSWORD);
    service.wait_for("a live", Duration::from_secs(20), |s| destination(s, "a")["state"] == "live");

    let bad =
        client.send("POST", "/api/destinations", &json!({"name": "b", "url": "http://example.com/live", "key": KEY}));
    assert_eq!(bad.code, 400);
    assert_eq!(bad.json()["errors"][0]["field"], "url", "{}", bad.body);
    assert!(!bad.body.contains(KEY));
    let twice = client.send("POST", "/api/destinations", &json!({"name": "a", "url": server.url()}));
    assert_eq!(twice.json()["errors"][0]["field"], "name", "{}", twice.body);
    let nameless = client.send("POST", "/api/destinations", &json!({"url": server.url()}));
    assert_eq!(nameless.json()["errors"][0]["field"], "name", "{}", nameless.body);

    let added = client.send(
        "POST",
        "/api/destinations",
        &json!({"name": "b", "preset": "custom", "url": server.url(), "key": KEY}),
    );
    assert_eq!(added.code, 200, "{}", added.body);
    assert_eq!(
        added.json(),
        json!({"name": "b", "url": server.url(), "preset": "custom", "key_set": true, "enabled": true})
    );
    assert!(server.wait_publishing(KEY, Duration::from_secs(30)), "b never published:\n{}", service.output());
    service.wait_for("b live", Duration::from_secs(20), |s| destination(s, "b")["state"] == "live");

    // The key field is write-only: an edit without it keeps it.
    let disabled = client.send("PUT", "/api/destinations/b", &json!({"enabled": false, "key": ""}));
    assert_eq!(disabled.code, 200, "{}", disabled.body);
    assert_eq!(disabled.json()["key_set"], true);
    assert!(server.wait_not_publishing(KEY, Duration::from_secs(20)), "b still publishing");
    service.wait_for("b disabled", Duration::from_secs(20), |s| destination(s, "b")["state"] == "disabled");

    // The review's: a changed URL kept the saved key and sent it to the new host. Another
    // server needs its key typed again; the same server keeps it.
    let moved = client.send("PUT", "/api/destinations/b", &json!({"url": "rtmp://elsewhere.example/live"}));
    assert_eq!((moved.code, &moved.json()["errors"][0]["field"]), (400, &json!("key")), "{}", moved.body);
    assert!(moved.body.contains("give its stream key again"), "{}", moved.body);
    let same = client.send("PUT", "/api/destinations/b", &json!({"url": format!("{}/other", server.url())}));
    assert_eq!((same.code, &same.json()["key_set"]), (200, &json!(true)), "{}", same.body);
    let typed =
        client.send("PUT", "/api/destinations/b", &json!({"url": "rtmp://elsewhere.example/live", "key": "k2"}));
    assert_eq!(typed.code, 200, "{}", typed.body);
    // An update server's token, likewise: a new server without one clears it.
    let hawkbit = json!({"source": "hawkbit", "hawkbit_url": "https://hawkbit.example.org", "target_token": "t0k"});
    assert_eq!(client.send("PUT", "/api/settings/update", &hawkbit).json()["update"]["target_token_set"], true);
    let port_only =
        client.send("PUT", "/api/settings/update", &json!({"hawkbit_url": "https://hawkbit.example.org:443/x"}));
    assert_eq!(port_only.json()["update"]["target_token_set"], true, "the same server: {}", port_only.body);
    let elsewhere = client.send("PUT", "/api/settings/update", &json!({"hawkbit_url": "https://rebind.evil.example"}));
    assert_eq!(elsewhere.json()["update"]["target_token_set"], false, "{}", elsewhere.body);

    let missing = client.send("PUT", "/api/destinations/nobody", &json!({"enabled": true}));
    assert_eq!(missing.code, 404);
    assert!(missing.body.contains("there are: a, b"), "{}", missing.body);
    let removed = client.send_raw("DELETE", "/api/destinations/b", "application/json", b"", &[]);
    assert_eq!(removed.code, 200, "{}", removed.body);
    assert_eq!(removed.json().as_array().unwrap().len(), 1);
    let saved = std::fs::read_to_string(service.data_dir().join("config.toml")).unwrap();
    assert!(!saved.contains(KEY), "b and its key are gone from the file:\n{saved}");
    assert!(!service.output().contains(KEY), "{}", service.output());
}

#[test]
fn a_new_password_ends_every_other_session() {
    let service = configured(&[]);
    let (phone, laptop) = (service.log_in(PASSWORD), Client::log_in(service.web_port, PASSWORD).ok().unwrap());
    let short = phone.send("POST", "/api/password", &json!({"current": PASSWORD, "new": "short"}));
    assert_eq!(short.json()["errors"][0]["field"], "new", "{}", short.body);
    let wrong = phone.send("POST", "/api/password", &json!({"current": "not-it-at-all", "new": "another-password"}));
    assert_eq!(wrong.json()["errors"][0]["field"], "current", "{}", wrong.body);
    let changed = phone.send("POST", "/api/password", &json!({"current": PASSWORD, "new": "another-password"}));
    assert_eq!(changed.code, 200, "{}", changed.body);
    assert!(changed.header("Set-Cookie").is_some_and(|c| c.contains("HttpOnly")), "the phone gets a new session");
    assert_eq!(laptop.get("/api/settings").code, 401, "the laptop's session ended");
    assert_eq!(phone.get("/api/settings").code, 401, "so did the phone's old one");
    assert!(Client::log_in(service.web_port, PASSWORD).is_err());
    assert!(Client::log_in(service.web_port, "another-password").is_ok());
    let saved = std::fs::read_to_string(service.data_dir().join("config.toml")).unwrap();
    assert!(!saved.contains("another-password") && saved.contains("$argon2id$"));
}

/// The way back in for someone holding the SD card: the file on the boot partition makes
/// the root helper (makespacelive-password-reset.service, run as root before the service)
/// forget the password; the settings file stays the service's; the setup page asks anew.
#[test]
fn a_file_on_the_boot_partition_forgets_the_device_password_and_nothing_else() {
    use std::os::unix::fs::MetadataExt;
    let mut service = configured(&[("a", "rtmp://127.0.0.1:9/live", KEY)]);
    service.log_in(PASSWORD);
    let boot = tempfile::tempdir().unwrap();
    let trigger = boot.path().join("makespacelive-reset-password");
    let data = service.data_dir();
    let args = |trigger: &std::path::Path| {
        [
            "reset-password",
            "--config",
            app::DEFAULTS,
            "--data-dir",
            data.to_str().unwrap(),
            "--trigger",
            trigger.to_str().unwrap(),
        ]
        .map(str::to_string)
    };
    let untouched = std::fs::read_to_string(data.join("config.toml")).unwrap();
    let nothing = app::run_cli(&args(&trigger).each_ref().map(String::as_str), &[]);
    assert!(nothing.status.success(), "{}", app::text(&nothing));
    assert_eq!(std::fs::read_to_string(data.join("config.toml")).unwrap(), untouched, "no file, no change");

    // The service's user owns its data directory on the box (`nobody` here).
    std::os::unix::fs::chown(&data, Some(65534), Some(65534)).unwrap();
    std::fs::write(&trigger, "").unwrap();
    let reset = app::run_cli(&args(&trigger).each_ref().map(String::as_str), &[]);
    assert!(reset.status.success(), "{}", app::text(&reset));
    assert!(app::text(&reset).contains("set a new one on the setup page"), "{}", app::text(&reset));
    assert!(!trigger.exists(), "the file is used up: the next boot keeps the new password");
    let file = data.join("config.toml");
    assert_eq!(std::fs::metadata(&file).unwrap().uid(), 65534, "still the service's to read");
    let saved = std::fs::read_to_string(&file).unwrap();
    assert!(!saved.contains("password_hash") && saved.contains(KEY), "only the password went:\n{saved}");

    service.restart(&[]);
    let port = service.web_port;
    service.wait_for_port();
    let setup = exchange(port, &format!("GET / HTTP/1.0\r\nHost: 127.0.0.1:{port}"), b"");
    assert_eq!(setup.code, 200);
    assert!(setup.body.contains("name=\"device_password\"") && !setup.body.contains("name=\"current_password\""));
    assert!(Client::log_in(port, PASSWORD).is_err(), "the old password opens nothing");
}

/// Each thread of a process: its name and its nice value (/proc/PID/task/TID/stat).
fn threads(pid: u32) -> Vec<(u32, String, i64)> {
    let mut found = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
        let (open, close) = (stat.find('(').unwrap(), stat.rfind(')').unwrap());
        // After the name: state is field 3, nice field 19.
        let nice = stat[close + 2..].split(' ').nth(16).unwrap().parse().unwrap();
        found.push((task.file_name().to_string_lossy().parse().unwrap(), stat[open + 1..close].to_string(), nice));
    }
    found
}

/// The stream is what the box is for: the web's threads (its handlers, and tiny_http's
/// accept and connection threads, started by them) run at nice 10, the stream's at 0, so a
/// crowd of browsers does not take the encoder's CPU (scripts/bench-web measures it).
#[test]
fn the_web_steps_back_for_the_stream() {
    let server = RtmpServer::start();
    let service = configured(&[("a", &server.url(), KEY)]);
    assert!(server.wait_publishing(KEY, Duration::from_secs(30)), "{}", service.output());
    let client = service.log_in(PASSWORD);
    assert_eq!(client.get("/api/status").code, 200);
    let threads = threads(service.pid());
    // The handlers are web-0 to web-3; tiny_http's threads keep their starter's name, "web".
    let handlers =
        threads.iter().filter(|(_, name, _)| name.strip_prefix("web-").is_some_and(|n| n.parse::<u8>().is_ok()));
    assert_eq!(handlers.clone().count(), 4, "{threads:?}");
    let tiny_http: Vec<_> = threads.iter().filter(|(_, name, _)| name == "web").collect();
    assert!(!tiny_http.is_empty(), "{threads:?}");
    assert!(handlers.chain(tiny_http).all(|(_, _, nice)| *nice == 10), "{threads:?}");
    let main = threads.iter().find(|(tid, _, _)| *tid == service.pid()).unwrap();
    assert_eq!(main.2, 0, "the service itself: {threads:?}");
    // GStreamer names its streaming threads after a pad ("queue0:src") or its element.
    let streaming: Vec<_> = threads.iter().filter(|(_, name, _)| name.contains(':')).collect();
    assert!(!streaming.is_empty(), "{threads:?}");
    assert!(streaming.iter().all(|(_, _, nice)| *nice == 0), "{threads:?}");
}
