//! The settings API: read the settings in force with every secret replaced by whether it
//! is set, change a section or a destination, the presets, what `probe` finds, the device
//! password.
//!
//! Invariants: a change is applied to the user's settings through `config::save_change`
//! (validated whole by `Config::validate`, the same rules as the files; saved atomically,
//! only what differs from the shipped defaults), then the service reloads; a refused change
//! saves nothing and names each field with what is allowed; a secret (key, token,
//! passphrase, hash) is never sent back, and one left out or sent empty is kept.
//! API boundary: the handlers the router calls.

use serde::{Deserialize, Serialize};

use crate::config::{self, Config, Destination, SaveError};
use crate::media;
use crate::secrets::Secret;

use super::api::{ApiError, FieldError, read_json, reply};
use super::{Portal, Response, presets};

/// Sections `PUT /api/settings/{section}` changes; `web` (the password) and `network` (the
/// access point, on the Wi-Fi page) have their own calls.
const SECTIONS: [&str; 3] = ["video", "audio", "update"];

/// `GET /api/settings`: every section, secrets as `<name>_set: bool`.
pub fn get(portal: &Portal) -> Result<Response, ApiError> {
    let config = portal.settings.get().config.clone();
    let mut value = serde_json::to_value(config::to_table(&config))
        .map_err(|e| ApiError::new(500, format!("cannot show the settings: {e}")))?;
    mask_secrets(&mut value);
    Ok(reply(&value))
}

/// Replaces every secret value by whether it is set, at any depth.
fn mask_secrets(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            let secret: Vec<String> = map.keys().filter(|k| config::is_secret_key(k)).cloned().collect();
            for key in secret {
                let set = map.remove(&key).is_some_and(|v| v.as_str().is_some_and(|s| !s.is_empty()));
                map.insert(format!("{key}_set"), serde_json::Value::Bool(set));
            }
            map.values_mut().for_each(mask_secrets);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(mask_secrets),
        _ => {}
    }
}

/// `PUT /api/settings/{section}`: the keys sent, each checked on its own (so a wrong type
/// is named), then the whole.
pub fn put_section(portal: &Portal, section: &str, request: &mut tiny_http::Request) -> Result<Response, ApiError> {
    if !SECTIONS.contains(&section) {
        let allowed = SECTIONS.join(", ");
        return Err(ApiError::new(404, format!("no settings section {section:?} here; the sections are {allowed}")));
    }
    let patch: serde_json::Map<String, serde_json::Value> = read_json(request)?;
    let token_given = ["target_token", "gateway_token"]
        .iter()
        .any(|k| patch.get(*k).and_then(|v| v.as_str()).is_some_and(|v| !v.is_empty()));
    save(portal, |config| {
        let server = config::server_of(&config.update.hawkbit_url);
        let mut table = config::to_table(config);
        for (key, value) in patch {
            let field = format!("{section}.{key}");
            let secret = config::is_secret_key(&key);
            if secret && value.as_str().is_some_and(str::is_empty) {
                continue; // left empty: kept
            }
            let value = toml::Value::try_from(value)
                .map_err(|_| ApiError::field(&field, "must be a string, a number, true or false"))?;
            let mut trial = table.clone();
            if let Some(toml::Value::Table(t)) = trial.get_mut(section) {
                t.insert(key, value);
            }
            let fits = Config::deserialize(toml::Value::Table(trial.clone()));
            if let Err(e) = fits {
                let reason = if secret { "must be text".to_string() } else { e.message().trim().to_string() };
                return Err(ApiError::field(&field, reason));
            }
            table = trial;
        }
        *config = Config::deserialize(toml::Value::Table(table)).map_err(|e| ApiError::new(400, e.to_string()))?;
        // A token is the old server's: never sent to a new one unless given with it.
        if config::server_of(&config.update.hawkbit_url) != server && !token_given {
            config.update.target_token = Secret::default();
            config.update.gateway_token = Secret::default();
        }
        Ok(())
    })?;
    get(portal)
}

/// One destination as the API shows it; the key only as whether one is saved.
#[derive(Serialize)]
struct DestinationJson<'a> {
    name: &'a str,
    url: String,
    preset: &'static str,
    key_set: bool,
    enabled: bool,
}

impl<'a> From<&'a Destination> for DestinationJson<'a> {
    fn from(d: &'a Destination) -> Self {
        let preset = presets::for_url(&d.url).id;
        // A key pasted into the URL field is a key all the same: never sent back.
        let url = crate::secrets::mask_pasted_key(&d.url);
        DestinationJson { name: &d.name, url, preset, key_set: !d.key.is_empty(), enabled: d.enabled }
    }
}

/// A destination as sent: every field optional on a change.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DestinationChange {
    name: Option<String>,
    /// One of the presets' ids; sets `url` unless it is "custom".
    preset: Option<String>,
    url: Option<String>,
    /// Empty or left out: the saved key stays.
    key: Option<Secret>,
    enabled: Option<bool>,
}

impl DestinationChange {
    fn apply(self, to: &mut Destination) -> Result<(), ApiError> {
        let server = config::server_of(&to.url);
        if let Some(name) = self.name {
            to.name = name.trim().to_string();
        }
        if let Some(id) = self.preset {
            let preset = presets::by_id(&id).ok_or_else(|| {
                ApiError::field("preset", format!("{id:?} is not a preset; choose one of {}", presets::ids()))
            })?;
            if let Some(url) = preset.url {
                to.url = url.into();
            }
        }
        if let Some(url) = self.url {
            to.url = url.trim().to_string();
        }
        match self.key.filter(|k| !k.is_empty()) {
            Some(key) => to.key = Secret::new(key.expose().trim()),
            None if !to.key.is_empty() && config::server_of(&to.url) != server => {
                let why = "the destination's server changed: give its stream key again (the saved key is never sent \
                           to a server it was not typed for)";
                return Err(ApiError::field("key", why));
            }
            None => {}
        }
        if let Some(enabled) = self.enabled {
            to.enabled = enabled;
        }
        Ok(())
    }
}

pub fn list_destinations(portal: &Portal) -> Result<Response, ApiError> {
    let config = portal.settings.get().config.clone();
    Ok(reply(&config.destinations.iter().map(DestinationJson::from).collect::<Vec<_>>()))
}

pub fn add_destination(portal: &Portal, request: &mut tiny_http::Request) -> Result<Response, ApiError> {
    let change: DestinationChange = read_json(request)?;
    if change.name.as_deref().is_none_or(|n| n.trim().is_empty()) {
        return Err(ApiError::field("name", "give the destination a name (it is how the status shows it)"));
    }
    let saved = save(portal, |config| {
        let mut destination =
            Destination { name: String::new(), url: String::new(), key: Secret::default(), enabled: true };
        change.apply(&mut destination)?;
        config.destinations.push(destination);
        destination_problems(config, config.destinations.len() - 1)
    })?;
    Ok(reply(&DestinationJson::from(saved.destinations.last().expect("just added"))))
}

pub fn change_destination(portal: &Portal, name: &str, request: &mut tiny_http::Request) -> Result<Response, ApiError> {
    let change: DestinationChange = read_json(request)?;
    let new_name = change.name.clone();
    let saved = save(portal, |config| {
        let index = index_of(config, name)?;
        change.apply(&mut config.destinations[index])?;
        destination_problems(config, index)
    })?;
    let name = new_name.as_deref().map_or(name, str::trim);
    let destination = saved.destinations.iter().find(|d| d.name == name).expect("just saved");
    Ok(reply(&DestinationJson::from(destination)))
}

pub fn remove_destination(portal: &Portal, name: &str) -> Result<Response, ApiError> {
    save(portal, |config| {
        let index = index_of(config, name)?;
        config.destinations.remove(index);
        Ok(())
    })?;
    list_destinations(portal)
}

fn index_of(config: &Config, name: &str) -> Result<usize, ApiError> {
    config.destinations.iter().position(|d| d.name == name).ok_or_else(|| {
        let names: Vec<&str> = config.destinations.iter().map(|d| d.name.as_str()).collect();
        ApiError::new(404, format!("no destination named {name:?}; there are: {}", names.join(", ")))
    })
}

/// The whole settings' problems, those of destination `index` under the request's own
/// field names (`url`, not `destinations[2].url`).
fn destination_problems(config: &Config, index: usize) -> Result<(), ApiError> {
    let Err(problems) = config.validate() else { return Ok(()) };
    let mut error = ApiError::problems(&problems);
    let prefix = format!("destinations[{index}].");
    for FieldError { field, reason } in &mut error.errors {
        if let Some(own) = field.as_deref().and_then(|f| f.strip_prefix(&prefix)) {
            *field = Some(own.to_string());
            *reason = reason.strip_prefix(&prefix).unwrap_or(reason).to_string();
        }
    }
    Err(error)
}

#[derive(Serialize)]
struct PresetJson {
    id: &'static str,
    label: &'static str,
    url: Option<&'static str>,
}

pub fn presets() -> Result<Response, ApiError> {
    let all: Vec<PresetJson> =
        presets::PRESETS.iter().map(|p| PresetJson { id: p.id, label: p.label, url: p.url }).collect();
    Ok(reply(&all))
}

#[derive(Serialize)]
struct ProbeJson {
    /// The cameras, microphones and encoders found, as `makespacelive probe` prints them.
    found: String,
    /// The pipeline the settings would run, keys masked, or why there is none.
    pipeline: Result<String, String>,
    reasons: Vec<String>,
}

/// `GET /api/probe`: what `makespacelive probe` prints, for the settings in force.
pub fn probe(portal: &Portal) -> Result<Response, ApiError> {
    let config = portal.settings.get().config.clone();
    let found = media::discovery::discover();
    let plan = media::plan::plan(&config, &found);
    let reasons = plan.as_ref().map(|p| p.reasons.clone()).unwrap_or_default();
    Ok(reply(&ProbeJson {
        found: media::probe_report(&found),
        pipeline: plan.map(|p| p.launch_line()).map_err(|e| e.to_string()),
        reasons,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    current: Secret,
    new: Secret,
}

/// `POST /api/password`: the current password, then a new one by the portal's rules.
/// Every session ends; the caller gets a new one.
pub fn change_password(portal: &Portal, request: &mut tiny_http::Request) -> Result<Response, ApiError> {
    let change: PasswordChange = read_json(request)?;
    super::check_new_password(&change.new).map_err(|why| ApiError::field("new", why))?;
    if !portal.check_password(request, &change.current)? {
        return Err(ApiError::field("current", "this is not the device password chosen for this box"));
    }
    let hash = super::hash_new_password(&change.new).map_err(|why| ApiError::new(500, why))?;
    save(portal, |config| {
        config.web.password_hash = hash;
        Ok(())
    })?;
    tracing::info!("web: the device password was changed; every session ended");
    Ok(portal.logged_in(reply(&serde_json::json!({"changed": true}))))
}

/// Applies `change` to the user's settings, checks them whole and saves them; every
/// thread takes the new settings in force from there. Returns the settings saved.
pub fn save(portal: &Portal, change: impl FnOnce(&mut Config) -> Result<(), ApiError>) -> Result<Config, ApiError> {
    let saved = portal
        .settings
        .save(|config| change(config).and_then(|()| config.validate().map_err(|p| ApiError::problems(&p))));
    match saved {
        Ok(saved) => Ok(saved.config.clone()),
        Err(SaveError::Refused(error)) => Err(error),
        Err(SaveError::NotSaved(why)) => {
            tracing::error!("web: settings not saved: {why}");
            Err(ApiError::new(500, format!("nothing was saved: {why}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_shown_only_as_whether_they_are_set() {
        let mut config = Config::default();
        config.destinations.push(Destination {
            name: "yt".into(),
            url: "rtmp://a/live".into(),
            key: Secret::new("sk-123"),
            enabled: true,
        });
        config.web.password_hash = Secret::new("$argon2id$x");
        let mut value = serde_json::to_value(config::to_table(&config)).unwrap();
        mask_secrets(&mut value);
        let text = value.to_string();
        assert!(!text.contains("sk-123") && !text.contains("argon2"), "{text}");
        assert_eq!(value["destinations"][0]["key_set"], true);
        assert_eq!(value["web"]["password_hash_set"], true);
        assert_eq!(value["network"]["ap_passphrase_set"], false);
        assert_eq!(value["update"]["target_token_set"], false);
        assert_eq!(value["video"]["bitrate_kbps"], config.video.bitrate_kbps);
    }

    #[test]
    fn a_change_keeps_the_saved_key_unless_one_is_typed() {
        let mut d =
            Destination { name: "a".into(), url: "rtmp://x/app".into(), key: Secret::new("old"), enabled: true };
        let change = DestinationChange { key: Some(Secret::default()), enabled: Some(false), ..Default::default() };
        change.apply(&mut d).unwrap();
        assert_eq!((d.key.expose(), d.enabled), ("old", false));
        let change =
            DestinationChange { preset: Some("twitch".into()), key: Some(Secret::new(" new ")), ..Default::default() };
        change.apply(&mut d).unwrap();
        assert_eq!((d.url.as_str(), d.key.expose()), ("rtmp://live.twitch.tv/app", "new"));
        let error =
            DestinationChange { preset: Some("myspace".into()), ..Default::default() }.apply(&mut d).unwrap_err();
        assert_eq!(error.errors[0].field.as_deref(), Some("preset"));
        assert!(error.errors[0].reason.contains("youtube"), "{error:?}");
    }

    #[test]
    fn a_destinations_problems_are_named_by_its_own_fields() {
        let mut config = Config::default();
        for name in ["a", "a"] {
            config.destinations.push(Destination {
                name: name.into(),
                url: "http://nope".into(),
                key: Secret::default(),
                enabled: true,
            });
        }
        let error = destination_problems(&config, 1).unwrap_err();
        let fields: Vec<_> = error.errors.iter().map(|e| e.field.clone().unwrap_or_default()).collect();
        assert!(fields.contains(&"name".to_string()) && fields.contains(&"url".to_string()), "{fields:?}");
        assert!(fields.contains(&"destinations[0].url".to_string()), "the other one keeps its path: {fields:?}");
    }
}
