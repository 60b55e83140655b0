//! The setup form: an `application/x-www-form-urlencoded` body parsed into typed fields,
//! then validated into what the box acts on, or a message for each field that is wrong.
//! Pure. Passwords and keys are `Secret` from the moment they are decoded, and no
//! message ever repeats one.

use std::fmt;

use crate::config::{check_ssid, check_stream_url, check_wpa_passphrase, server_of};
use crate::network::{ScanEntry, Security, WifiRequest};
use crate::secrets::Secret;

use super::presets::{self, Preset};

/// The form's fields; `name` is how the page and the body spell each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The network picked from the scan list.
    Ssid,
    /// A network typed by hand (it does not announce itself).
    HiddenSsid,
    WifiPassword,
    Preset,
    Url,
    Key,
    DevicePassword,
    DevicePasswordConfirm,
    /// Asked for once a device password exists.
    CurrentPassword,
}

impl Field {
    pub const ALL: [Field; 9] = [
        Field::Ssid,
        Field::HiddenSsid,
        Field::WifiPassword,
        Field::Preset,
        Field::Url,
        Field::Key,
        Field::DevicePassword,
        Field::DevicePasswordConfirm,
        Field::CurrentPassword,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Field::Ssid => "ssid",
            Field::HiddenSsid => "hidden_ssid",
            Field::WifiPassword => "wifi_password",
            Field::Preset => "preset",
            Field::Url => "url",
            Field::Key => "key",
            Field::DevicePassword => "device_password",
            Field::DevicePasswordConfirm => "device_password_confirm",
            Field::CurrentPassword => "current_password",
        }
    }

    fn index(self) -> usize {
        Field::ALL.iter().position(|f| *f == self).expect("every field is in ALL")
    }
}

/// The body as typed: each field at most once, absent ones empty.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawForm {
    pub ssid: String,
    pub hidden_ssid: String,
    pub wifi_password: Secret,
    pub preset: String,
    pub url: String,
    pub key: Secret,
    pub device_password: Secret,
    pub device_password_confirm: Secret,
    pub current_password: Secret,
}

/// A body the form does not accept at all (answered 400, nothing is looked at further).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    Unknown(Vec<String>),
    Repeated(Vec<&'static str>),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let allowed = Field::ALL.map(Field::name).join(", ");
        match self {
            ParseError::Unknown(names) => {
                let names: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
                write!(f, "unknown form fields {}; allowed: {allowed}", names.join(", "))
            }
            ParseError::Repeated(names) => write!(f, "form fields given more than once: {}", names.join(", ")),
        }
    }
}

/// Decodes the body (percent and `+` decoding by `form_urlencoded`; bytes that are not
/// UTF-8 become U+FFFD). Unknown and repeated fields are refused by name.
pub fn parse(body: &[u8]) -> Result<RawForm, ParseError> {
    let mut values: [Option<String>; 9] = Default::default();
    let mut unknown = Vec::new();
    let mut repeated = Vec::new();
    for (name, value) in form_urlencoded::parse(body) {
        match Field::ALL.into_iter().find(|f| f.name() == name) {
            None => unknown.push(name.into_owned()),
            Some(field) => {
                let slot = &mut values[field.index()];
                if slot.is_some() {
                    repeated.push(field.name());
                }
                *slot = Some(value.into_owned());
            }
        }
    }
    if !unknown.is_empty() {
        return Err(ParseError::Unknown(unknown));
    }
    if !repeated.is_empty() {
        repeated.dedup();
        return Err(ParseError::Repeated(repeated));
    }
    let [
        ssid,
        hidden_ssid,
        wifi_password,
        preset,
        url,
        key,
        device_password,
        device_password_confirm,
        current_password,
    ] = values.map(Option::unwrap_or_default);
    Ok(RawForm {
        ssid,
        hidden_ssid,
        wifi_password: Secret::new(wifi_password),
        preset,
        url,
        key: Secret::new(key),
        device_password: Secret::new(device_password),
        device_password_confirm: Secret::new(device_password_confirm),
        current_password: Secret::new(current_password),
    })
}

/// What the form is judged against besides itself.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The box joins Wi-Fi networks: false when the network is managed elsewhere
    /// (`Mode::Unmanaged`), and the Wi-Fi fields must then be left out.
    pub wifi: bool,
    /// The last scan: an open network needs no password, an enterprise one cannot be set up.
    pub networks: &'a [ScanEntry],
    /// A stream key is saved already, for this server (`values::server_of`): an empty key
    /// field keeps it while the URL reaches the same server.
    pub key_saved_for: Option<&'a str>,
    /// A device password is set: changing anything needs it.
    pub password_set: bool,
}

/// A valid form, as the box acts on it.
#[derive(Debug, Clone, PartialEq)]
pub struct Setup {
    /// `None`: the network is managed elsewhere.
    pub wifi: Option<WifiRequest>,
    pub preset: &'static Preset,
    pub url: String,
    /// `None`: keep the saved key.
    pub key: Option<Secret>,
    /// `None`: keep the device password that is set.
    pub new_password: Option<Secret>,
    /// To be checked against the stored hash (present whenever one is set).
    pub current_password: Option<Secret>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: Field,
    pub message: String,
}

pub const DEVICE_PASSWORD_MIN: usize = 8;

/// Every field is checked (all messages at once); `Ok` only when nothing is wrong.
pub fn validate(form: &RawForm, context: &Context) -> Result<Setup, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut fail = |field, message: String| errors.push(FieldError { field, message });

    let hidden = !form.hidden_ssid.is_empty();
    let (ssid_field, ssid) = if hidden { (Field::HiddenSsid, &form.hidden_ssid) } else { (Field::Ssid, &form.ssid) };
    let scanned = context.networks.iter().find(|n| n.ssid == *ssid && !hidden);
    if context.wifi {
        if ssid.is_empty() {
            fail(Field::Ssid, "pick a network from the list, or type the name of a hidden one below".into());
        } else if let Err(e) = check_ssid(ssid) {
            fail(ssid_field, e);
        } else if scanned.is_some_and(|n| n.security == Security::Enterprise) {
            fail(
                ssid_field,
                "this network uses company logins (802.1X), which the box cannot join; pick another".into(),
            );
        }
        if !form.wifi_password.is_empty() {
            if let Err(e) = check_wpa_passphrase(&form.wifi_password) {
                fail(Field::WifiPassword, e);
            }
        } else if scanned.is_some_and(|n| n.security != Security::Open) {
            fail(Field::WifiPassword, "this network is protected: type its Wi-Fi password".into());
        }
    } else if !ssid.is_empty() || !form.wifi_password.is_empty() {
        let message = "the network is managed elsewhere: the box joins no Wi-Fi network; leave the Wi-Fi fields out";
        fail(ssid_field, message.into());
    }

    let preset = presets::by_id(&form.preset);
    let url = match preset.and_then(|p| p.url) {
        Some(url) => url.to_string(),
        None => form.url.trim().to_string(),
    };
    match preset {
        None => fail(Field::Preset, format!("choose a stream service; allowed: {}", presets::ids())),
        Some(p) if p.url.is_none() && url.is_empty() => {
            fail(Field::Url, "type the server's URL (rtmp://host/app or rtmps://host/app)".into())
        }
        Some(p) if p.url.is_none() => {
            if let Err(e) = check_stream_url(&url) {
                fail(Field::Url, e);
            }
        }
        Some(_) => {}
    }

    let key = form.key.expose().trim();
    let elsewhere = context.key_saved_for.is_some_and(|saved| server_of(&url).is_some_and(|now| now != saved));
    if key.is_empty() && context.key_saved_for.is_none() {
        fail(Field::Key, "paste the stream key from your service's live dashboard".into());
    } else if key.is_empty() && elsewhere {
        let why = "the stream goes to another server now: paste its stream key (the saved key is never sent to a \
                   server it was not typed for)";
        fail(Field::Key, why.into());
    } else if key.chars().any(char::is_whitespace) {
        fail(Field::Key, "the key contains spaces; paste it without them".into());
    }

    let new_password = &form.device_password;
    let typed = new_password.expose().chars().count();
    if typed == 0 && !context.password_set {
        fail(
            Field::DevicePassword,
            format!(
                "choose a device password of at least {DEVICE_PASSWORD_MIN} characters for the box's settings pages"
            ),
        );
    } else if typed > 0 && typed < DEVICE_PASSWORD_MIN {
        fail(
            Field::DevicePassword,
            format!("the device password has {typed} characters; use at least {DEVICE_PASSWORD_MIN}"),
        );
    } else if typed > 0 && form.device_password_confirm != *new_password {
        fail(Field::DevicePasswordConfirm, "the two device passwords differ; type the same one twice".into());
    }
    if context.password_set && form.current_password.is_empty() {
        fail(Field::CurrentPassword, "type the device password you chose for this box".into());
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Setup {
        wifi: context.wifi.then(|| WifiRequest { ssid: ssid.clone(), passphrase: form.wifi_password.clone(), hidden }),
        preset: preset.expect("checked above"),
        url,
        key: (!key.is_empty()).then(|| Secret::new(key)),
        new_password: (typed > 0).then(|| new_password.clone()),
        current_password: context.password_set.then(|| form.current_password.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::Band;
    use proptest::prelude::*;

    fn networks() -> Vec<ScanEntry> {
        let entry = |ssid: &str, security| ScanEntry { ssid: ssid.into(), signal: 70, security, band: Band::Ghz2_4 };
        vec![
            entry("Venue", Security::Wpa2),
            entry("Cafe", Security::Open),
            entry("Corp", Security::Enterprise),
            entry("New", Security::Wpa3),
        ]
    }

    const FRESH: Context<'static> = Context { wifi: true, networks: &[], key_saved_for: None, password_set: false };
    const YOUTUBE: Option<&str> = Some("rtmp://a.rtmp.youtube.com:1935");

    fn encode(pairs: &[(&str, &str)]) -> Vec<u8> {
        form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish().into_bytes()
    }

    fn good() -> Vec<(&'static str, &'static str)> {
        vec![
            ("ssid", "Venue"),
            ("hidden_ssid", ""),
            ("wifi_password", "correct horse"),
            ("preset", "youtube"),
            ("url", ""),
            ("key", "abcd-1234-efgh"),
            ("device_password", "box password"),
            ("device_password_confirm", "box password"),
        ]
    }

    fn with<'a>(changes: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut pairs: Vec<(&'a str, &'a str)> = good();
        for (name, value) in changes {
            match pairs.iter_mut().find(|(n, _)| n == name) {
                Some(pair) => pair.1 = value,
                None => pairs.push((name, value)),
            }
        }
        pairs
    }

    fn errors(pairs: &[(&str, &str)], context: &Context) -> Vec<(&'static str, String)> {
        match validate(&parse(&encode(pairs)).unwrap(), context) {
            Ok(_) => vec![],
            Err(errors) => errors.into_iter().map(|e| (e.field.name(), e.message)).collect(),
        }
    }

    #[test]
    fn a_good_form_becomes_a_setup() {
        let nets = networks();
        let context = Context { networks: &nets, ..FRESH };
        let setup = validate(&parse(&encode(&good())).unwrap(), &context).unwrap();
        assert_eq!(
            setup.wifi,
            Some(WifiRequest { ssid: "Venue".into(), passphrase: Secret::new("correct horse"), hidden: false })
        );
        assert_eq!((setup.preset.id, setup.url.as_str()), ("youtube", "rtmp://a.rtmp.youtube.com/live2"));
        assert_eq!(setup.key, Some(Secret::new("abcd-1234-efgh")));
        assert_eq!(setup.new_password, Some(Secret::new("box password")));
        assert_eq!(setup.current_password, None);

        let wired = Context { wifi: false, ..FRESH };
        let setup = validate(&parse(&encode(&with(&[("ssid", ""), ("wifi_password", "")]))).unwrap(), &wired).unwrap();
        assert_eq!(setup.wifi, None, "the network is managed elsewhere");
        assert_eq!(setup.key, Some(Secret::new("abcd-1234-efgh")));
        assert_eq!(setup.new_password, Some(Secret::new("box password")));
    }

    /// The form's fields, the context, and the expected (field, part of its message) errors.
    type Row<'a> = (Vec<(&'a str, &'a str)>, &'a Context<'a>, Vec<(&'a str, &'a str)>);

    #[test]
    fn the_validation_table() {
        let nets = networks();
        let scanned = Context { networks: &nets, ..FRESH };
        let set_up = Context { wifi: true, networks: &nets, key_saved_for: YOUTUBE, password_set: true };
        let wired = Context { wifi: false, ..FRESH };
        let long_ssid = "x".repeat(33);
        let long_hidden = "é".repeat(17);
        let hex64 = "ab".repeat(32);
        let not_hex64 = "g".repeat(64);
        #[rustfmt::skip]
        let table: Vec<Row> = vec![
            (with(&[]), &scanned, vec![]),
            (with(&[("ssid", "")]), &scanned, vec![("ssid", "pick a network from the list")]),
            (with(&[("ssid", &long_ssid)]), &scanned, vec![("ssid", "33 bytes long; Wi-Fi allows at most 32")]),
            (with(&[("hidden_ssid", &long_hidden)]), &scanned, vec![("hidden_ssid", "34 bytes long")]),
            (with(&[("hidden_ssid", "Back room"), ("wifi_password", "")]), &scanned, vec![]),
            (with(&[("ssid", "Corp")]), &scanned, vec![("ssid", "company logins (802.1X)")]),
            (with(&[("wifi_password", "short")]), &scanned, vec![("wifi_password", "has 5 characters; Wi-Fi passwords have 8 to 63")]),
            (with(&[("wifi_password", &hex64)]), &scanned, vec![]),
            (with(&[("wifi_password", &not_hex64)]), &scanned, vec![("wifi_password", "hexadecimal")]),
            (with(&[("wifi_password", "")]), &scanned, vec![("wifi_password", "protected: type its Wi-Fi password")]),
            (with(&[("ssid", "New"), ("wifi_password", "")]), &scanned, vec![("wifi_password", "protected")]),
            (with(&[("ssid", "Cafe"), ("wifi_password", "")]), &scanned, vec![]),
            (with(&[("ssid", "Not scanned"), ("wifi_password", "")]), &scanned, vec![]),
            (with(&[("preset", "")]), &scanned, vec![("preset", "allowed: youtube, youtube-rtmps, twitch")]),
            (with(&[("preset", "myspace")]), &scanned, vec![("preset", "choose a stream service")]),
            (with(&[("preset", "custom")]), &scanned, vec![("url", "type the server's URL")]),
            (with(&[("preset", "custom"), ("url", "http://example.org/live")]), &scanned, vec![("url", "only rtmp:// or rtmps://")]),
            (with(&[("preset", "custom"), ("url", " rtmp://10.0.0.5/live ")]), &scanned, vec![]),
            (with(&[("preset", "twitch"), ("url", "not a url")]), &scanned, vec![]),
            (with(&[("key", "")]), &scanned, vec![("key", "paste the stream key")]),
            (with(&[("key", "  ")]), &scanned, vec![("key", "paste the stream key")]),
            (with(&[("key", "ab cd")]), &scanned, vec![("key", "contains spaces")]),
            (with(&[("device_password", ""), ("device_password_confirm", "")]), &scanned, vec![("device_password", "at least 8 characters")]),
            (with(&[("device_password", "1234567"), ("device_password_confirm", "1234567")]), &scanned, vec![("device_password", "has 7 characters; use at least 8")]),
            (with(&[("device_password_confirm", "box passwort")]), &scanned, vec![("device_password_confirm", "differ")]),
            (with(&[("key", ""), ("device_password", ""), ("device_password_confirm", "")]), &set_up, vec![("current_password", "the device password you chose for this box")]),
            (with(&[("key", ""), ("device_password", ""), ("device_password_confirm", ""), ("current_password", "old one!")]), &set_up, vec![]),
            // A saved key is never sent to another server: a new one must be typed.
            (with(&[("key", ""), ("preset", "custom"), ("url", "rtmp://rebind.example/live"), ("device_password", ""), ("device_password_confirm", ""), ("current_password", "old one!")]), &set_up, vec![("key", "the stream goes to another server now")]),
            (with(&[("key", ""), ("preset", "custom"), ("url", "rtmp://a.rtmp.youtube.com:1935/other"), ("device_password", ""), ("device_password_confirm", ""), ("current_password", "old one!")]), &set_up, vec![]),
            (with(&[("ssid", ""), ("preset", "custom"), ("key", ""), ("device_password", "")]), &scanned,
             vec![("ssid", "pick"), ("url", "URL"), ("key", "paste"), ("device_password", "at least 8")]),
            (with(&[("ssid", ""), ("wifi_password", "")]), &wired, vec![]),
            (with(&[("ssid", "")]), &wired, vec![("ssid", "managed elsewhere")]),
            (with(&[("ssid", ""), ("wifi_password", ""), ("hidden_ssid", "Back room")]), &wired, vec![("hidden_ssid", "leave the Wi-Fi fields out")]),
            (with(&[("wifi_password", "")]), &wired, vec![("ssid", "managed elsewhere")]),
            (with(&[("ssid", ""), ("wifi_password", ""), ("key", "")]), &wired, vec![("key", "paste the stream key")]),
        ];
        for (pairs, context, expected) in table {
            let got = errors(&pairs, context);
            assert_eq!(got.len(), expected.len(), "{pairs:?}: {got:?}");
            for ((field, message), (want_field, want)) in got.iter().zip(&expected) {
                assert_eq!(field, want_field, "{pairs:?}: {got:?}");
                assert!(message.contains(want), "{pairs:?}: {message:?} lacks {want:?}");
            }
        }
    }

    #[test]
    fn secrets_never_appear_in_messages() {
        let pairs = with(&[("wifi_password", "pässwörd-zz"), ("device_password", "pw-abc"), ("key", "k k")]);
        for (_, message) in errors(&pairs, &FRESH) {
            for secret in ["pässwörd-zz", "pw-abc", "k k"] {
                assert!(!message.contains(secret), "{message}");
            }
        }
        let form = parse(&encode(&good())).unwrap();
        assert!(!format!("{form:?}").contains("correct horse"));
        assert!(!format!("{:?}", validate(&form, &FRESH)).contains("correct horse"));
    }

    #[test]
    fn unknown_and_repeated_fields_are_named() {
        let err = parse(b"ssid=a&colour=red&x%20y=1").unwrap_err();
        assert_eq!(err, ParseError::Unknown(vec!["colour".into(), "x y".into()]));
        assert!(
            err.to_string().contains("unknown form fields \"colour\", \"x y\"; allowed: ssid, hidden_ssid"),
            "{err}"
        );
        let err = parse(b"ssid=a&ssid=b&key=1&key=2&key=3").unwrap_err();
        assert_eq!(err.to_string(), "form fields given more than once: ssid, key");
        assert_eq!(parse(b""), Ok(RawForm::default()));
        assert_eq!(parse(b"ssid=Caf%C3%A9+Wi-Fi").unwrap().ssid, "Café Wi-Fi");
    }

    proptest! {
        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(form) = parse(&body) {
                let nets = networks();
                for context in [FRESH, Context { wifi: false, ..FRESH }, Context { wifi: true, networks: &nets, key_saved_for: YOUTUBE, password_set: true }] {
                    let _ = validate(&form, &context);
                }
            }
        }

        #[test]
        fn arbitrary_field_values_never_panic(values in proptest::collection::vec(any::<String>(), 9)) {
            let pairs: Vec<(&str, &str)> =
                Field::ALL.iter().zip(&values).map(|(f, v)| (f.name(), v.as_str())).collect();
            let form = parse(&encode(&pairs)).expect("known fields, once each");
            prop_assert_eq!(&form.ssid, &values[0]);
            prop_assert_eq!(form.key.expose(), values[5].as_str());
            if let Err(errors) = validate(&form, &FRESH) {
                prop_assert!(!errors.is_empty());
            }
        }

        #[test]
        fn valid_forms_round_trip(
            ssid in "[ -~]{1,32}",
            wifi in "[ -~]{8,63}",
            preset in 0..presets::PRESETS.len() - 1,
            key in "[!-~]{1,60}",
            device in "\\PC{8,40}",
        ) {
            let preset_id = presets::PRESETS[preset].id;
            let pairs = [
                ("ssid", ssid.as_str()), ("wifi_password", wifi.as_str()), ("preset", preset_id),
                ("key", key.as_str()), ("device_password", device.as_str()), ("device_password_confirm", device.as_str()),
            ];
            let setup = validate(&parse(&encode(&pairs)).unwrap(), &FRESH).expect("valid");
            prop_assert_eq!(setup.wifi, Some(WifiRequest { ssid, passphrase: Secret::new(wifi), hidden: false }));
            prop_assert_eq!(setup.preset.id, preset_id);
            prop_assert_eq!(setup.key, Some(Secret::new(key)));
            prop_assert_eq!(setup.new_password, Some(Secret::new(device)));
        }
    }
}
