//! The RAUC edge: a blocking client for `de.pengutronix.rauc` (object `/`, interface
//! `de.pengutronix.rauc.Installer`) on the system bus (`DBUS_SYSTEM_BUS_ADDRESS` when set).
//! It uses only what RAUC 1.8 and 1.15 both have: `InstallBundle`, `Info` (1.8 has no
//! `InspectBundle`), `Mark`, `GetSlotStatus`, `GetPrimary`, the `Completed` signal and
//! the `Progress`, `LastError`, `Operation`, `Compatible` and `BootSlot` properties.
//! Building install options and reading slot dictionaries are pure; every other function
//! is one D-Bus call or one install followed to its end. Install headers are `Secret`s and
//! reach only RAUC.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use zbus::MatchRule;
use zbus::blocking::fdo::DBusProxy;
use zbus::blocking::{Connection, MessageIterator};
use zbus::zvariant::{OwnedValue, Value};

use crate::secrets::Secret;

const RAUC: &str = "de.pengutronix.rauc";
const PATH: &str = "/";
const INSTALLER: &str = "de.pengutronix.rauc.Installer";
const PROPERTIES: &str = "org.freedesktop.DBus.Properties";
const BUS: &str = "org.freedesktop.DBus";
const METHOD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);
const UNKNOWN_METHOD: &str = "org.freedesktop.DBus.Error.UnknownMethod";
/// All RAUC 1.8's `Info` says when it refuses a bundle.
const INFO_ERROR: &str = "rauc info error";

#[derive(Debug)]
pub enum RaucError {
    /// No bus, or nobody owns `de.pengutronix.rauc` on it.
    NotRunning(String),
    /// RAUC checked the bundle or ran the install, and said no (its `LastError`).
    Refused(String),
    /// RAUC would not start an install (busy, an option it does not know).
    NotStarted(String),
    /// RAUC left the bus while installing.
    ServiceGone,
    /// Any other call RAUC answered with an error.
    Call { what: &'static str, message: String },
    /// A reply or property of a shape RAUC does not send.
    Reply(String),
}

impl fmt::Display for RaucError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RaucError::NotRunning(why) => write!(f, "RAUC is not running on the system bus ({why})"),
            RaucError::Refused(why) => write!(f, "RAUC refused the bundle: {why}"),
            RaucError::NotStarted(why) => write!(f, "RAUC did not start the install: {why}"),
            RaucError::ServiceGone => {
                write!(f, "RAUC stopped during the install (it left the system bus before it finished)")
            }
            RaucError::Call { what, message } => write!(f, "RAUC {what} failed: {message}"),
            RaucError::Reply(why) => write!(f, "RAUC sent an unexpected reply: {why}"),
        }
    }
}

impl std::error::Error for RaucError {}

/// What `InstallBundle` gets besides the source.
#[derive(Debug, Default, Clone)]
pub struct InstallArgs {
    /// `Name: value` lines RAUC sends with its HTTP requests for a streamed bundle.
    pub http_headers: Vec<Secret>,
    /// The CA that RAUC checks the bundle server's TLS certificate against.
    pub tls_ca: Option<PathBuf>,
}

/// The `Progress` property: how far the install is, RAUC's step and its nesting depth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub percent: u8,
    pub message: String,
    pub depth: i32,
}

/// What `Info` reads from a bundle's signed manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleInfo {
    pub compatible: String,
    pub version: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotState {
    Booted,
    Active,
    Inactive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootStatus {
    Good,
    Bad,
}

/// One slot as `GetSlotStatus` gives it; keys RAUC left out (a slot never written has no
/// bundle) are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotStatus {
    /// `rootfs.0`.
    pub name: String,
    pub class: Option<String>,
    pub device: Option<String>,
    /// The slot `type` (raw, ext4, …).
    pub kind: Option<String>,
    pub bootname: Option<String>,
    pub state: Option<SlotState>,
    pub boot_status: Option<BootStatus>,
    pub bundle_compatible: Option<String>,
    pub bundle_version: Option<String>,
    pub installed_timestamp: Option<String>,
    pub installed_count: Option<u32>,
    pub activated_timestamp: Option<String>,
    pub sha256: Option<String>,
    pub size: Option<u64>,
}

/// `Operation`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    Idle,
    Installing,
    /// A value a later RAUC may add.
    Other(String),
}

/// What `Mark` sets on a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Good,
    Bad,
    /// Primary for the next boot.
    Active,
}

impl Mark {
    fn as_str(self) -> &'static str {
        match self {
            Mark::Good => "good",
            Mark::Bad => "bad",
            Mark::Active => "active",
        }
    }
}

impl std::str::FromStr for Mark {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "good" => Ok(Mark::Good),
            "bad" => Ok(Mark::Bad),
            "active" => Ok(Mark::Active),
            other => Err(format!("unknown mark {other:?}: allowed are good, bad and active")),
        }
    }
}

/// The `a{sv}` options of `InstallBundle`: only those given; never `ignore-compatible`.
pub fn install_options(args: &InstallArgs) -> HashMap<&'static str, Value<'_>> {
    let mut options = HashMap::new();
    if !args.http_headers.is_empty() {
        let headers: Vec<&str> = args.http_headers.iter().map(Secret::expose).collect();
        options.insert("http-headers", Value::from(headers));
    }
    if let Some(ca) = &args.tls_ca {
        options.insert("tls-ca", Value::from(ca.to_string_lossy().into_owned()));
    }
    options
}

/// Reads one `(name, dict)` entry of `GetSlotStatus`.
pub fn slot_status(name: &str, dict: &HashMap<String, OwnedValue>) -> SlotStatus {
    let text = |key: &str| match dict.get(key).map(|v| &**v) {
        Some(Value::Str(s)) => Some(s.to_string()),
        _ => None,
    };
    let state = text("state").and_then(|s| match s.as_str() {
        "booted" => Some(SlotState::Booted),
        "active" => Some(SlotState::Active),
        "inactive" => Some(SlotState::Inactive),
        _ => None,
    });
    let boot_status = text("boot-status").and_then(|s| match s.as_str() {
        "good" => Some(BootStatus::Good),
        "bad" => Some(BootStatus::Bad),
        _ => None,
    });
    SlotStatus {
        name: name.to_string(),
        class: text("class"),
        device: text("device"),
        kind: text("type"),
        bootname: text("bootname"),
        state,
        boot_status,
        bundle_compatible: text("bundle.compatible"),
        bundle_version: text("bundle.version"),
        installed_timestamp: text("installed.timestamp"),
        installed_count: match dict.get("installed.count").map(|v| &**v) {
            Some(Value::U32(n)) => Some(*n),
            _ => None,
        },
        activated_timestamp: text("activated.timestamp"),
        sha256: text("sha256"),
        size: match dict.get("size").map(|v| &**v) {
            Some(Value::U64(n)) => Some(*n),
            _ => None,
        },
    }
}

/// The `update` section of an `InspectBundle` reply.
pub fn inspected(info: &HashMap<String, OwnedValue>) -> Option<BundleInfo> {
    let section = OwnedValue::try_from(unwrapped(info.get("update")?).try_clone().ok()?).ok()?;
    let update = HashMap::<String, OwnedValue>::try_from(section).ok()?;
    let text = |key: &str| match update.get(key).map(|v| unwrapped(v)) {
        Some(Value::Str(s)) => Some(s.to_string()),
        _ => None,
    };
    Some(BundleInfo { compatible: text("compatible")?, version: text("version")? })
}

/// A value without the variants around it: RAUC 1.13's `InspectBundle` wraps its `update`
/// section in a variant inside the `v` of its `a{sv}` (seen on the QEMU rung).
fn unwrapped<'a>(value: &'a Value<'a>) -> &'a Value<'a> {
    match value {
        Value::Value(inner) => unwrapped(inner),
        other => other,
    }
}

fn operation(value: &str) -> Operation {
    match value {
        "idle" => Operation::Idle,
        "installing" => Operation::Installing,
        other => Operation::Other(other.to_string()),
    }
}

fn progress((percent, message, depth): (i32, String, i32)) -> Progress {
    Progress { percent: percent.clamp(0, 100) as u8, message, depth }
}

/// A D-Bus error: RAUC absent, or RAUC's own message.
fn call_error(what: &'static str, error: zbus::Error) -> RaucError {
    const ABSENT: [&str; 3] = [
        "org.freedesktop.DBus.Error.ServiceUnknown",
        "org.freedesktop.DBus.Error.NameHasNoOwner",
        "org.freedesktop.DBus.Error.NoReply",
    ];
    match error {
        zbus::Error::MethodError(name, detail, _) if ABSENT.contains(&name.as_str()) => {
            RaucError::NotRunning(detail.unwrap_or_else(|| name.to_string()))
        }
        zbus::Error::FDO(e)
            if matches!(
                *e,
                zbus::fdo::Error::ServiceUnknown(_)
                    | zbus::fdo::Error::NameHasNoOwner(_)
                    | zbus::fdo::Error::NoReply(_)
            ) =>
        {
            RaucError::NotRunning(e.to_string())
        }
        zbus::Error::InputOutput(e) => RaucError::NotRunning(e.to_string()),
        zbus::Error::MethodError(name, detail, _) => {
            RaucError::Call { what, message: detail.unwrap_or_else(|| name.to_string()) }
        }
        other => RaucError::Call { what, message: other.to_string() },
    }
}

pub struct Rauc {
    conn: Connection,
}

impl Rauc {
    /// Connects to the system bus; RAUC itself is first asked at the first call.
    pub fn connect() -> Result<Rauc, RaucError> {
        let no_bus = |e: zbus::Error| RaucError::NotRunning(format!("no system bus: {e}"));
        // A call RAUC never answers (a wedged daemon, a bus policy that drops the reply)
        // must not hang the update thread: the slowest, `Info` on a large bundle, checks
        // its signature in seconds. An install's progress comes as signals, not replies.
        let conn = zbus::blocking::connection::Builder::system()
            .map_err(no_bus)?
            .method_timeout(METHOD_TIMEOUT)
            .build()
            .map_err(no_bus)?;
        Ok(Rauc { conn })
    }

    fn call<R>(
        &self,
        what: &'static str,
        method: &str,
        body: &(impl serde::Serialize + zbus::zvariant::DynamicType),
    ) -> Result<R, RaucError>
    where
        R: for<'d> serde::Deserialize<'d> + zbus::zvariant::Type,
    {
        let reply =
            self.conn.call_method(Some(RAUC), PATH, Some(INSTALLER), method, body).map_err(|e| call_error(what, e))?;
        reply.body().deserialize().map_err(|e| RaucError::Reply(format!("{method}: {e}")))
    }

    fn property<R>(&self, name: &'static str) -> Result<R, RaucError>
    where
        R: TryFrom<OwnedValue>,
        R::Error: fmt::Display,
    {
        let reply = self
            .conn
            .call_method(Some(RAUC), PATH, Some(PROPERTIES), "Get", &(INSTALLER, name))
            .map_err(|e| call_error("property read", e))?;
        let value: OwnedValue = reply.body().deserialize().map_err(|e| RaucError::Reply(format!("{name}: {e}")))?;
        R::try_from(value).map_err(|e| RaucError::Reply(format!("{name}: {e}")))
    }

    /// Installs `source` (a path or URL) into the other slot and makes it primary; hands
    /// each new `Progress` to `on_progress`. Returns when RAUC signals `Completed`, or at
    /// once when RAUC leaves the bus.
    pub fn install(
        &self,
        source: &str,
        args: &InstallArgs,
        on_progress: &mut dyn FnMut(&Progress),
    ) -> Result<(), RaucError> {
        // Listen before asking: a fast install completes before the call returns.
        let mut events = Events::subscribe(&self.conn).map_err(|e| call_error("signal subscription", e))?;
        self.call::<()>("install", "InstallBundle", &(source, install_options(args))).map_err(|e| match e {
            RaucError::Call { message, .. } => RaucError::NotStarted(message),
            other => other,
        })?;
        let mut last: Option<Progress> = None;
        let mut report = |now: Progress| {
            if last.as_ref() != Some(&now) {
                on_progress(&now);
                last = Some(now);
            }
        };
        for message in events.messages.by_ref() {
            let Ok(message) = message else { continue };
            let header = message.header();
            let (Some(interface), Some(member)) = (header.interface(), header.member()) else { continue };
            match (interface.as_str(), member.as_str()) {
                (BUS, "NameOwnerChanged") => {
                    if let Ok((name, _, new)) = message.body().deserialize::<(String, String, String)>()
                        && name == RAUC
                        && new.is_empty()
                    {
                        return Err(RaucError::ServiceGone);
                    }
                }
                (PROPERTIES, "PropertiesChanged") => {
                    let Ok((iface, changed, _)) =
                        message.body().deserialize::<(String, HashMap<String, OwnedValue>, Vec<String>)>()
                    else {
                        continue;
                    };
                    if iface == INSTALLER
                        && let Some(value) = changed.get("Progress")
                        && let Ok(value) = value.try_clone()
                        && let Ok(now) = <(i32, String, i32)>::try_from(value)
                    {
                        report(progress(now));
                    }
                }
                (INSTALLER, "Completed") => {
                    let result: i32 =
                        message.body().deserialize().map_err(|e| RaucError::Reply(format!("Completed: {e}")))?;
                    // The last change may be sent after the signal.
                    if let Ok(now) = self.property::<(i32, String, i32)>("Progress") {
                        report(progress(now));
                    }
                    if result == 0 {
                        return Ok(());
                    }
                    let why: String = self.property("LastError")?;
                    return Err(RaucError::Refused(if why.is_empty() {
                        format!("install failed with code {result}")
                    } else {
                        why
                    }));
                }
                _ => {}
            }
        }
        Err(RaucError::NotRunning("the bus connection closed during the install".into()))
    }

    /// The compatible and version of a bundle, after RAUC checked its signature:
    /// `InspectBundle` (RAUC ≥ 1.9, with the reason for a refusal), else `Info` (1.8).
    pub fn bundle_info(&self, source: &str, args: &InstallArgs) -> Result<BundleInfo, RaucError> {
        let refused = |e| match e {
            RaucError::Call { message, .. } if message == INFO_ERROR => {
                RaucError::Refused(format!("{message} (this RAUC writes the reason only to its log)"))
            }
            RaucError::Call { message, .. } => RaucError::Refused(message),
            other => other,
        };
        match self.conn.call_method(
            Some(RAUC),
            PATH,
            Some(INSTALLER),
            "InspectBundle",
            &(source, install_options(args)),
        ) {
            Ok(reply) => {
                let info: HashMap<String, OwnedValue> =
                    reply.body().deserialize().map_err(|e| RaucError::Reply(format!("InspectBundle: {e}")))?;
                inspected(&info)
                    .ok_or_else(|| RaucError::Reply("InspectBundle: no update.compatible and update.version".into()))
            }
            Err(zbus::Error::MethodError(name, _, _)) if name.as_str() == UNKNOWN_METHOD => {
                let (compatible, version) = self.call("bundle check", "Info", &(source,)).map_err(refused)?;
                Ok(BundleInfo { compatible, version })
            }
            Err(e) => Err(refused(call_error("bundle check", e))),
        }
    }

    pub fn slots(&self) -> Result<Vec<SlotStatus>, RaucError> {
        let raw: Vec<(String, HashMap<String, OwnedValue>)> = self.call("slot status", "GetSlotStatus", &())?;
        Ok(raw.iter().map(|(name, dict)| slot_status(name, dict)).collect())
    }

    /// The slot (`rootfs.1`) the bootloader starts next.
    pub fn primary(&self) -> Result<String, RaucError> {
        self.call("primary slot", "GetPrimary", &())
    }

    /// The bootname of the slot running now.
    pub fn booted(&self) -> Result<String, RaucError> {
        self.property("BootSlot")
    }

    pub fn compatible(&self) -> Result<String, RaucError> {
        self.property("Compatible")
    }

    pub fn operation(&self) -> Result<Operation, RaucError> {
        let value: String = self.property("Operation")?;
        Ok(operation(&value))
    }

    /// Marks `slot` (`booted`, `other` or a slot name); returns the slot RAUC marked and its
    /// message.
    pub fn mark(&self, mark: Mark, slot: &str) -> Result<(String, String), RaucError> {
        self.call("mark", "Mark", &(mark.as_str(), slot))
    }
}

/// RAUC's signals and its leaving the bus, in the order they arrive, for one install.
/// The match rules are removed on drop.
struct Events {
    messages: MessageIterator,
    bus: DBusProxy<'static>,
    rules: Vec<MatchRule<'static>>,
}

impl Events {
    fn subscribe(conn: &Connection) -> Result<Events, zbus::Error> {
        // Everything this connection receives; the rules below decide what the bus sends.
        let messages = MessageIterator::from(conn);
        let bus = DBusProxy::new(conn)?;
        let rules = vec![
            MatchRule::builder().msg_type(zbus::message::Type::Signal).sender(RAUC)?.path(PATH)?.build(),
            MatchRule::builder()
                .msg_type(zbus::message::Type::Signal)
                .sender(BUS)?
                .interface(BUS)?
                .member("NameOwnerChanged")?
                .add_arg(RAUC)?
                .build(),
        ];
        let mut events = Events { messages, bus, rules: Vec::new() };
        for rule in rules {
            events.bus.add_match_rule(rule.clone())?;
            events.rules.push(rule);
        }
        Ok(events)
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        for rule in self.rules.drain(..) {
            let _ = self.bus.remove_match_rule(rule);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dict(entries: &[(&str, Value<'static>)]) -> HashMap<String, OwnedValue> {
        entries.iter().map(|(k, v)| (k.to_string(), OwnedValue::try_from(v.clone()).unwrap())).collect()
    }

    #[test]
    fn slot_status_is_typed_and_missing_keys_are_none() {
        let written = dict(&[
            ("class", Value::from("rootfs")),
            ("type", Value::from("raw")),
            ("bootname", Value::from("B")),
            ("state", Value::from("inactive")),
            ("boot-status", Value::from("bad")),
            ("bundle.version", Value::from("0.2.0")),
            ("installed.count", Value::from(3u32)),
            ("size", Value::from(1024u64)),
            ("sha256", Value::from("ab12")),
        ]);
        let slot = slot_status("rootfs.1", &written);
        assert_eq!(slot.name, "rootfs.1");
        assert_eq!(slot.bootname.as_deref(), Some("B"));
        assert_eq!(slot.kind.as_deref(), Some("raw"));
        assert_eq!(slot.state, Some(SlotState::Inactive));
        assert_eq!(slot.boot_status, Some(BootStatus::Bad));
        assert_eq!(slot.bundle_version.as_deref(), Some("0.2.0"));
        assert_eq!((slot.installed_count, slot.size, slot.sha256.as_deref()), (Some(3), Some(1024), Some("ab12")));
        assert_eq!(slot.bundle_compatible, None);

        let fresh = slot_status("rootfs.0", &dict(&[("state", Value::from("booted")), ("size", Value::from("x"))]));
        assert_eq!(
            fresh,
            SlotStatus { name: "rootfs.0".into(), state: Some(SlotState::Booted), ..SlotStatus::default() }
        );
    }

    #[test]
    fn inspect_bundle_replies_are_read_from_their_update_section() {
        let update = dict(&[("compatible", Value::from("msl")), ("version", Value::from("0.3.1"))]);
        let info = HashMap::from([
            ("manifest-hash".to_string(), OwnedValue::try_from(Value::from("ab")).unwrap()),
            ("update".to_string(), OwnedValue::try_from(Value::from(update.clone())).unwrap()),
        ]);
        assert_eq!(inspected(&info), Some(BundleInfo { compatible: "msl".into(), version: "0.3.1".into() }));
        let no_version = dict(&[("compatible", Value::from("msl"))]);
        let info = HashMap::from([("update".to_string(), OwnedValue::try_from(Value::from(no_version)).unwrap())]);
        assert_eq!(inspected(&info), None);
        assert_eq!(inspected(&HashMap::new()), None);
    }

    /// As RAUC 1.13 sends it (`busctl --json` on the QEMU rung): `update` is a variant
    /// inside the `v` of the `a{sv}`, read back from a D-Bus message.
    #[test]
    fn inspect_bundle_replies_are_read_as_they_arrive_on_the_bus() {
        let update = HashMap::from([("version", Value::from("0.2.0")), ("compatible", Value::from("msl"))]);
        let wrapped = Value::Value(Box::new(Value::from(update)));
        let body = HashMap::from([("update", wrapped), ("manifest-hash", Value::from("ab"))]);
        let message = zbus::Message::method_return(
            &zbus::Message::method_call("/", "InspectBundle").unwrap().build(&()).unwrap().header(),
        )
        .unwrap()
        .build(&body)
        .unwrap();
        let info: HashMap<String, OwnedValue> = message.body().deserialize().unwrap();
        assert_eq!(inspected(&info), Some(BundleInfo { compatible: "msl".into(), version: "0.2.0".into() }));
    }

    #[test]
    fn install_options_carry_only_what_was_given() {
        assert!(install_options(&InstallArgs::default()).is_empty());
        let args = InstallArgs {
            http_headers: vec![Secret::new("Authorization: TargetToken s3cret")],
            tls_ca: Some(PathBuf::from("/etc/ca.pem")),
        };
        let options = install_options(&args);
        assert_eq!(options.len(), 2);
        assert_eq!(options["http-headers"], Value::from(vec!["Authorization: TargetToken s3cret"]));
        assert_eq!(options["tls-ca"], Value::from("/etc/ca.pem"));
        assert!(!format!("{args:?}").contains("s3cret"));
    }

    #[test]
    fn marks_and_operations_parse() {
        assert_eq!("good".parse::<Mark>(), Ok(Mark::Good));
        assert_eq!("active".parse::<Mark>().map(Mark::as_str), Ok("active"));
        assert!("fine".parse::<Mark>().unwrap_err().contains("good, bad and active"));
        assert_eq!(operation("installing"), Operation::Installing);
        assert_eq!(operation("idle"), Operation::Idle);
        assert_eq!(operation("checking"), Operation::Other("checking".into()));
        assert_eq!(progress((140, "done".into(), 1)).percent, 100);
    }

    #[test]
    fn absent_service_reads_as_not_running() {
        let absent = zbus::Error::MethodError(
            zbus::names::OwnedErrorName::try_from("org.freedesktop.DBus.Error.ServiceUnknown").unwrap(),
            Some("The name is not activatable".into()),
            zbus::Message::method_call("/", "Ping").unwrap().build(&()).unwrap(),
        );
        let error = call_error("install", absent);
        assert!(matches!(error, RaucError::NotRunning(_)), "{error}");
        assert!(error.to_string().starts_with("RAUC is not running on the system bus"));
    }
}
