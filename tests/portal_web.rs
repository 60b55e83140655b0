//! The captive portal of the real binary over real HTTP: the OS probes under the host
//! names phones use, the body limits, and a setup saved whole with its secrets kept.
//! `[network] manage = false`: the network is managed elsewhere, so the portal asks for
//! no Wi-Fi and saves without connecting; the NetworkManager side of the flow is tested
//! against python-dbusmock (tests/portal_browser.rs) and on the QEMU rung.

mod app;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use app::{Client, Reply, Service, exchange, free_port, test_settings};

fn get(port: u16, path: &str, host: &str) -> Reply {
    exchange(port, &format!("GET {path} HTTP/1.0\r\nHost: {host}"), b"")
}

fn post_form(port: u16, pairs: &[(&str, &str)]) -> Reply {
    post_form_from(port, pairs, "")
}

/// `post_form` with more header lines (`\r\nName: value`…).
fn post_form_from(port: u16, pairs: &[(&str, &str)], headers: &str) -> Reply {
    let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
    exchange(
        port,
        &format!(
            "POST /setup HTTP/1.0\r\nHost: 10.42.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}{headers}",
            body.len()
        ),
        body.as_bytes(),
    )
}

fn start_unconfigured() -> Service {
    let port = free_port();
    let service = Service::start(&test_settings(port, &[]), port);
    service.wait_for("the web server", Duration::from_secs(20), |_| true);
    service
}

const PROBES: [&str; 9] = [
    "/generate_204",
    "/gen_204",
    "/hotspot-detect.html",
    "/library/test/success.html",
    "/connecttest.txt",
    "/ncsi.txt",
    "/redirect",
    "/canonical.html",
    "/success.txt",
];

const PHONE_HOSTS: [&str; 7] = [
    "connectivitycheck.gstatic.com",
    "clients3.google.com",
    "captive.apple.com",
    "www.msftconnecttest.com",
    "www.msftncsi.com",
    "detectportal.firefox.com",
    "10.42.0.1",
];

const WIFI_PASSWORD: &str = "wifi-pw-7f3a9c";
const STREAM_KEY: &str = "key-4b8e-2d61";
const DEVICE_PASSWORD: &str = "device-pw-91c0";

/// No Wi-Fi: the network is managed elsewhere.
fn good_form() -> Vec<(&'static str, &'static str)> {
    vec![
        ("preset", "custom"),
        ("url", "rtmp://127.0.0.1:9/live"),
        ("key", STREAM_KEY),
        ("device_password", DEVICE_PASSWORD),
        ("device_password_confirm", DEVICE_PASSWORD),
    ]
}

#[test]
fn an_unconfigured_box_sends_every_probe_on_every_host_to_the_portal() {
    let service = start_unconfigured();
    let port = service.web_port;
    for path in PROBES {
        for host in PHONE_HOSTS.iter().copied().chain([format!("127.0.0.1:{port}").as_str()]) {
            let reply = get(port, path, host);
            assert_eq!(reply.code, 302, "{path} on {host}: {}", reply.head);
            assert_eq!(reply.header("Location"), Some("http://10.42.0.1/"), "{path} on {host}");
            assert_eq!(reply.header("Cache-Control"), Some("no-store"), "{path} on {host}");
        }
    }
    let elsewhere = get(port, "/some/news/article", "www.example.org");
    assert_eq!((elsewhere.code, elsewhere.header("Location")), (302, Some("http://10.42.0.1/")));

    let api = get(port, "/captive-portal/api", "10.42.0.1");
    assert_eq!(api.header("Content-Type"), Some("application/captive+json"));
    let json: serde_json::Value = serde_json::from_str(&api.body).unwrap();
    assert_eq!(json, serde_json::json!({"captive": true, "user-portal-url": "http://10.42.0.1/"}));

    for host in ["10.42.0.1", "makespacelive.local", "localhost"] {
        let page = get(port, "/", host);
        assert_eq!(page.code, 200, "{host}");
        assert_eq!(page.header("Cache-Control"), Some("no-store"));
        assert!(page.body.contains("<form method=\"post\" action=\"/setup\">"), "{}", page.body);
        assert!(page.body.len() <= 30 * 1024, "{} bytes", page.body.len());
    }
    // Before a device password is set there is nothing but the setup page.
    let elsewhere = get(port, "/<script>", "10.42.0.1");
    assert_eq!((elsewhere.code, elsewhere.header("Location")), (303, Some("/")));
    assert_eq!(elsewhere.header("X-Content-Type-Options"), Some("nosniff"));
    let status = get(port, "/api/status", "10.42.0.1");
    let status: serde_json::Value = serde_json::from_str(&status.body).unwrap();
    assert_eq!(status["network"]["mode"], "unmanaged");
    let portal: serde_json::Value = serde_json::from_str(&get(port, "/api/portal", "10.42.0.1").body).unwrap();
    assert_eq!(portal["captive"], true);
}

#[test]
fn bodies_too_large_of_the_wrong_type_or_with_unknown_fields_are_refused() {
    let service = start_unconfigured();
    let port = service.web_port;
    let settings = std::fs::read(service.data_dir().join("config.toml")).unwrap();

    // Declared too large: refused from the headers alone, no body sent.
    let started = Instant::now();
    let huge = exchange(
        port,
        "POST /setup HTTP/1.0\r\nHost: 10.42.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: 10000000",
        b"",
    );
    assert_eq!(huge.code, 413, "{}", huge.head);
    assert!(huge.body.contains("larger than 16384 bytes"), "{}", huge.body);
    assert!(started.elapsed() < Duration::from_secs(4), "answered before any body arrived");

    // Declared nothing (chunked): no route takes a chunked body, 411 before any is read.
    let chunk = "a".repeat(4096);
    let chunked: String = (0..5).map(|_| format!("1000\r\n{chunk}\r\n")).collect::<String>() + "0\r\n\r\n";
    let reply = exchange(
        port,
        "POST /setup HTTP/1.1\r\nHost: 10.42.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Transfer-Encoding: chunked\r\nConnection: close",
        chunked.as_bytes(),
    );
    assert_eq!(reply.code, 411, "{}", reply.head);
    assert!(reply.body.contains("Content-Length"), "{}", reply.body);

    let wrong_type = exchange(
        port,
        "POST /setup HTTP/1.0\r\nHost: 10.42.0.1\r\nContent-Type: application/json\r\nContent-Length: 2",
        b"{}",
    );
    assert_eq!(wrong_type.code, 415);
    assert!(wrong_type.body.contains("application/x-www-form-urlencoded, not \"application/json\""));

    let mut unknown = good_form();
    unknown.push(("admin", "1"));
    let reply = post_form(port, &unknown);
    assert_eq!(reply.code, 400);
    assert!(reply.body.contains("unknown form fields \"admin\"; allowed: ssid"), "{}", reply.body);

    let mut bad = good_form();
    bad[1].1 = "http://example.org/live";
    bad.extend([("ssid", "Venue"), ("wifi_password", WIFI_PASSWORD)]);
    let reply = post_form(port, &bad);
    assert_eq!(reply.code, 400);
    assert!(reply.body.contains("the network is managed elsewhere: the box joins no Wi-Fi"), "{}", reply.body);
    assert!(reply.body.contains("only rtmp:// or rtmps://"), "{}", reply.body);
    assert!(reply.body.contains("value=\"http://example.org/live\""), "the URL stays filled in");
    assert!(![STREAM_KEY, DEVICE_PASSWORD, WIFI_PASSWORD].iter().any(|s| reply.body.contains(s)));

    assert_eq!(std::fs::read(service.data_dir().join("config.toml")).unwrap(), settings, "nothing saved");
    assert_eq!(get(port, "/api/status", "10.42.0.1").code, 200, "still serving");
}

#[test]
fn a_valid_setup_is_saved_whole_with_only_a_hash_of_the_device_password() {
    let service = start_unconfigured();
    let port = service.web_port;
    let path = service.data_dir().join("config.toml");

    let page = get(port, "/", "10.42.0.1").body;
    assert!(page.contains("The network is managed elsewhere"), "{page}");
    assert!(!page.contains("name=\"ssid\"") && !page.contains("name=\"wifi_password\""), "{page}");
    let reply = post_form(port, &good_form());
    assert_eq!(reply.code, 200, "{}", reply.body);
    assert!(reply.body.contains("The settings are saved"), "{}", reply.body);
    assert!(!reply.body.contains("Connecting"), "{}", reply.body);
    assert!(reply.body.contains("http://makespacelive.local/"));

    let saved = std::fs::read_to_string(&path).unwrap();
    let config: toml::Table = toml::from_str(&saved).unwrap();
    let destination = &config["destinations"].as_array().unwrap()[0];
    assert_eq!(destination["url"].as_str(), Some("rtmp://127.0.0.1:9/live"));
    assert_eq!(destination["key"].as_str(), Some(STREAM_KEY));
    let hash = config["web"]["password_hash"].as_str().unwrap();
    assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
    assert!(!saved.contains(DEVICE_PASSWORD), "{saved}");
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);

    // The supervisor picked the destination up; the box is configured: probes succeed, and
    // the status needs the device password now.
    assert_eq!(get(port, "/api/status", "10.42.0.1").code, 401);
    service.log_in(DEVICE_PASSWORD);
    service.wait_for("the saved destination", Duration::from_secs(20), |s| {
        app::destination(s, "custom")["url"] == "rtmp://127.0.0.1:9/live/****"
    });
    assert!(service.output().contains("saved from the portal (the network is managed elsewhere)"), "no connect");
    assert_eq!(get(port, "/generate_204", "connectivitycheck.gstatic.com").code, 204);
    let apple = get(port, "/hotspot-detect.html", "captive.apple.com");
    assert_eq!(apple.body, "<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>");
    assert_eq!(get(port, "/connecttest.txt", "www.msftconnecttest.com").body, "Microsoft Connect Test");

    // Changing anything now needs the device password.
    let mut again: Vec<(&str, &str)> = good_form()[..2].to_vec();
    let reply = post_form(port, &again);
    assert_eq!(reply.code, 400);
    assert!(reply.body.contains("type the device password you chose for this box"), "{}", reply.body);
    assert!(reply.body.contains("A key is saved"), "{}", reply.body);
    again.push(("current_password", "not-the-password"));
    let reply = post_form(port, &again);
    assert!(reply.body.contains("this is not the device password chosen for this box"), "{}", reply.body);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), saved, "nothing saved");

    again.pop();
    again.push(("current_password", DEVICE_PASSWORD));
    again[1].1 = "rtmp://127.0.0.1:9/other";
    let reply = post_form(port, &again);
    assert_eq!(reply.code, 200, "{}", reply.body);
    let resaved: toml::Table = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let destination = &resaved["destinations"].as_array().unwrap()[0];
    assert_eq!(destination["url"].as_str(), Some("rtmp://127.0.0.1:9/other"));
    assert_eq!(destination["key"].as_str(), Some(STREAM_KEY), "an empty key field keeps the saved key");
    assert_eq!(resaved["web"]["password_hash"].as_str(), Some(hash), "an empty new password keeps the hash");

    let output = service.output();
    for secret in [WIFI_PASSWORD, STREAM_KEY, DEVICE_PASSWORD] {
        assert!(!output.contains(secret), "{secret} in the service's output:\n{output}");
        assert!(!reply.body.contains(secret));
        assert!(!get(port, "/", "10.42.0.1").body.contains(secret));
        assert!(!get(port, "/api/status", "10.42.0.1").body.contains(secret));
    }
}

/// The review's attack: `POST /setup` checked the device password with no guess limit, from
/// any Origin, failures unlogged (12 wrong guesses right after `/login` had answered 429,
/// then the right one saved). Now it goes through the one limiter, logged, and only from
/// the box's own page.
#[test]
fn the_setup_form_guesses_through_the_one_limit_and_only_from_the_box() {
    let service = start_unconfigured();
    let port = service.web_port;
    assert_eq!(post_form(port, &good_form()).code, 200);
    let path = service.data_dir().join("config.toml");
    let saved = std::fs::read_to_string(&path).unwrap();
    let change = |password: &'static str| {
        let mut form = good_form()[..2].to_vec();
        form[1].1 = "rtmp://127.0.0.1:9/changed";
        form.push(("current_password", password));
        form
    };
    let elsewhere = post_form_from(port, &change(DEVICE_PASSWORD), "\r\nOrigin: http://evil.example");
    assert_eq!(elsewhere.code, 403, "{}", elsewhere.body);
    for login in ["/login", "/rescan"] {
        let head =
            format!("POST {login} HTTP/1.0\r\nHost: 10.42.0.1\r\nOrigin: http://evil.example\r\nContent-Length: 0");
        assert_eq!(exchange(port, &head, b"").code, 403, "{login} from another site");
    }
    for n in 0..5 {
        let wrong = post_form(port, &change(["guess-0", "guess-1", "guess-2", "guess-3", "guess-4"][n]));
        assert_eq!(wrong.code, 400, "{}", wrong.body);
        assert!(wrong.body.contains("this is not the device password chosen for this box"));
    }
    let held = post_form(port, &change(DEVICE_PASSWORD));
    assert_eq!(held.code, 429, "the right one waits too: {}", held.body);
    assert!(held.header("Retry-After").is_some() && held.body.contains("too many wrong passwords"), "{}", held.body);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), saved, "nothing saved");
    let login = Client::log_in(port, DEVICE_PASSWORD).err().expect("/login shares the wait");
    assert_eq!(login.code, 429);
    assert_eq!(service.output().matches("a wrong device password from").count(), 5, "{}", service.output());
}

/// The review's: an attacker's rejected URL prefilled the next visitor's page. What a
/// phone typed is shown again to that phone only. And off the access point, scanning is
/// the LAN page's, behind the password.
#[test]
fn a_phone_sees_only_what_it_typed_and_a_set_up_box_scans_for_no_stranger() {
    let service = start_unconfigured();
    let port = service.web_port;
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("preset", "custom"), ("url", "rtmp://attacker.example/phish")])
        .finish();
    let head = format!(
        "POST /setup HTTP/1.0\r\nHost: 10.42.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}",
        body.len()
    );
    let attacker = app::exchange_from([127, 0, 0, 2], port, &head, body.as_bytes());
    assert_eq!(attacker.code, 400);
    assert!(attacker.body.contains("attacker.example"), "the attacker's own page keeps what it typed");
    let page = "GET / HTTP/1.0\r\nHost: 10.42.0.1";
    let visitor = app::exchange_from([127, 0, 0, 3], port, page, b"");
    assert_eq!(visitor.code, 200);
    assert!(!visitor.body.contains("attacker.example"), "another phone's form is prefilled with it");
    assert!(app::exchange_from([127, 0, 0, 2], port, page, b"").body.contains("attacker.example"));

    assert_eq!(post_form(port, &good_form()).code, 200, "set up");
    let rescan = "POST /rescan HTTP/1.0\r\nHost: 10.42.0.1\r\nContent-Length: 0";
    assert_eq!(exchange(port, rescan, b"").code, 403, "a set-up box off its access point");
}

/// tiny_http 0.12.0 drained an unread body into `vec![0; declared]`: one request declaring
/// 1e14 bytes aborted the process, 4 GB would have taken a Pi's memory. The drain is
/// bounded now (third_party/tiny_http-0.12.0.patch); the client sends few bytes and leaves.
#[test]
fn a_huge_declared_body_neither_kills_the_service_nor_stops_the_web() {
    let mut service = start_unconfigured();
    let port = service.web_port;
    for declared in ["100000000000000", "4294967296", "70000", "60000"] {
        for request in ["POST /setup", "POST /api/status", "GET /api/status", "PUT /no/such/page"] {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let head = format!(
                "{request} HTTP/1.1\r\nHost: 10.42.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n\
                 Content-Length: {declared}\r\n\r\nssid=Venue"
            );
            stream.write_all(head.as_bytes()).unwrap();
            let mut answer = [0; 12];
            let read = stream.read(&mut answer).unwrap_or(0);
            assert!(answer[..read].starts_with(b"HTTP/1.1 "), "{request} declaring {declared}: {:?}", &answer[..read]);
            drop(stream);
            let status = app::http_get(port, "/api/status");
            assert!(service.is_running(), "{request} declaring {declared} killed it:\n{}", service.output());
            assert!(status.is_some(), "{request} declaring {declared}: no status afterwards");
        }
    }
}

/// The attack of the review: an endless chunk-size line (`0`s) to `POST /login` was
/// buffered whole (400 MiB took the service from 353 to 763 MB). Now a `Transfer-Encoding`
/// is answered 411 and the connection closed before the body is read: 100 MiB offered,
/// the service's memory stays where it was and the web answers beside it.
#[test]
fn an_endless_chunk_size_line_is_not_read() {
    let mut service = start_unconfigured();
    let port = service.web_port;
    let before = service.rss_kb();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = "POST /login HTTP/1.1\r\nHost: 10.42.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n\
                Transfer-Encoding: chunked\r\n\r\n";
    stream.write_all(head.as_bytes()).unwrap();
    let zeros = vec![b'0'; 1 << 20];
    let sent = (0..100).take_while(|_| stream.write_all(&zeros).is_ok()).count();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 411"), "{answer:?}");
    assert!(sent < 100, "the server read all 100 MiB of a chunk-size line");
    assert!(app::http_get(port, "/api/status").is_some() && service.is_running(), "{}", service.output());
    let after = service.rss_kb();
    eprintln!("service memory: {before} kB before, {after} kB after {sent} MiB of chunk-size line offered");
    assert!(after < before + 8 * 1024, "{before} kB → {after} kB");
}

/// A body too large to drain is left unread and its connection closed: what follows
/// it on the stream is body, never a request of its own.
#[test]
fn what_follows_an_undrained_body_is_not_taken_for_a_request() {
    let service = start_unconfigured();
    let smuggled = "GET /api/status HTTP/1.1\r\nHost: 10.42.0.1\r\n\r\n";
    let head = "PUT /no/such/page HTTP/1.1\r\nHost: 10.42.0.1\r\nContent-Length: 1000000\r\n\r\n";
    let raw = answers(service.web_port, format!("{head}{}{smuggled}", "a".repeat(2000)).as_bytes());
    assert!(raw.matches("HTTP/1.1 ").count() <= 1 && !raw.contains("\"network\""), "{raw}");
}

/// A request's line and headers may take 32 KiB (each byte was kept, without a bound);
/// past that the connection is closed unanswered.
#[test]
fn a_request_head_larger_than_32_kib_is_not_read_to_its_end() {
    let mut service = start_unconfigured();
    let port = service.web_port;
    let with_header = |bytes: usize| {
        let filler = "a".repeat(bytes);
        let head = "GET /api/status HTTP/1.1\r\nHost: 10.42.0.1\r\nConnection: close";
        answers(port, format!("{head}\r\nX-Filler: {filler}\r\n\r\n").as_bytes())
    };
    assert!(with_header(16 * 1024).starts_with("HTTP/1.1 200"), "a 16 KiB header is fine");
    let raw = with_header(1024 * 1024);
    assert!(!raw.contains("HTTP/1.1 200"), "{raw}");
    assert!(service.is_running() && app::http_get(port, "/api/status").is_some(), "{}", service.output());
}

/// Sends `request` (write errors ignored: the server may close first) and reads every
/// answer until the server closes, resets, or goes quiet.
fn answers(port: u16, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = stream.write_all(request);
    let mut raw = Vec::new();
    let mut chunk = [0; 4096];
    while let Ok(n @ 1..) = stream.read(&mut chunk) {
        raw.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&raw).into_owned()
}

/// A client that declares a body and sends none of it holds one connection, not the web:
/// other requests are answered at once, and the stalled one is closed after the server's
/// 10 s I/O timeout (tiny_http set no timeout, and one thread served every request).
#[test]
fn a_stalled_client_neither_stops_the_web_nor_keeps_its_connection() {
    let service = start_unconfigured();
    let port = service.web_port;
    let stall = |head: &str| {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        stream.write_all(head.as_bytes()).unwrap();
        stream
    };
    let started = Instant::now();
    // The forms' bodies are read in their connections' threads (vendored tiny_http reads a
    // body of up to 16 KiB before handing the request on), no handler waits for them; the
    // status is answered, then its body drained.
    let form_head = "POST /setup HTTP/1.1\r\nHost: 10.42.0.1\r\nContent-Type: application/x-www-form-urlencoded";
    let mut form = stall(&format!("{form_head}\r\nContent-Length: 5000\r\n\r\npreset=cus"));
    let mut small = stall(&format!("{form_head}\r\nContent-Length: 1000\r\n\r\npreset=cus"));
    let mut drained = stall("GET /api/status HTTP/1.1\r\nHost: 10.42.0.1\r\nContent-Length: 60000\r\n\r\n");
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..3 {
        let asked = Instant::now();
        let status = get(port, "/api/status", "10.42.0.1");
        assert_eq!(status.code, 200);
        assert!(asked.elapsed() < Duration::from_secs(1), "/api/status took {:?}", asked.elapsed());
    }
    let until_closed = |stream: &mut TcpStream| {
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw);
        String::from_utf8_lossy(&raw).into_owned()
    };
    assert_eq!(until_closed(&mut form), "", "closed unanswered");
    assert_eq!(until_closed(&mut small), "", "closed unanswered");
    let status_answer = until_closed(&mut drained);
    assert!(status_answer.starts_with("HTTP/1.1 200") && status_answer.contains("\"network\""), "{status_answer}");
    let closed = started.elapsed();
    assert!(closed >= Duration::from_secs(9) && closed < Duration::from_secs(20), "closed after {closed:?}");
    assert_eq!(get(port, "/api/status", "10.42.0.1").code, 200, "still serving");
}
