//! The portal's setup form: the page for a client (with what it last typed), and a
//! submitted setup checked, saved whole and turned into the network to join.

use super::*;

impl Portal {
    /// The setup page for `client`, from the settings in force.
    pub(super) fn setup_page(
        &self,
        network: &NetworkStatus,
        errors: &[FieldError],
        problem: Option<&str>,
        client: IpAddr,
    ) -> String {
        let settings = self.settings.get();
        self.state().setup_page(&settings.config, network, errors, problem, client)
    }

    pub(super) fn not_saved(&self, network: &NetworkStatus, why: &str, client: IpAddr) -> Response {
        tracing::error!("web: the portal's settings were not saved: {why}");
        html(500, self.setup_page(network, &[], Some(why), client))
    }

    pub(super) fn submit(
        &self,
        request: &mut tiny_http::Request,
        network: &NetworkStatus,
    ) -> (Response, Option<WifiRequest>) {
        let media_type = header(request, "Content-Type").unwrap_or_default();
        let media_type = media_type.split(';').next().unwrap_or_default().trim();
        if !media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            let why = format!("the setup form is sent as application/x-www-form-urlencoded, not {media_type:?}\n");
            return (text(415, why), None);
        }
        let body = match read_body(request) {
            Ok(body) => body,
            Err(response) => return (response, None),
        };
        let raw = match form::parse(&body) {
            Ok(raw) => raw,
            Err(e) => return (text(400, format!("{e}\n")), None),
        };
        let client = client_ip(request);
        let prefill = Prefill {
            ssid: raw.ssid.clone(),
            hidden_ssid: raw.hidden_ssid.clone(),
            preset: raw.preset.clone(),
            url: raw.url.clone(),
        };
        self.state().remember_prefill(client, prefill);
        let (key_server, hash) = {
            let settings = self.settings.get();
            (saved_key_server(&settings.config), settings.config.web.password_hash.clone())
        };
        let context = Context {
            wifi: network.mode != Mode::Unmanaged,
            networks: &network.networks,
            key_saved_for: key_server.as_deref(),
            password_set: !hash.is_empty(),
        };
        let setup = match form::validate(&raw, &context) {
            Ok(setup) => setup,
            Err(errors) => return (html(400, self.setup_page(network, &errors, None, client)), None),
        };
        // The device password typed to change a set-up box: the one limiter, as /login.
        if let Some(typed) = &setup.current_password {
            let refused = match self.check_password(request, typed) {
                Ok(true) => None,
                Ok(false) => Some(ApiError::new(400, "this is not the device password chosen for this box")),
                Err(error) => Some(error),
            };
            if let Some(error) = refused {
                let message = error.errors.first().map(|e| e.reason.clone()).unwrap_or_default();
                let errors = [FieldError { field: Field::CurrentPassword, message }];
                let page = html(error.code, self.setup_page(network, &errors, None, client));
                return (error.with_retry_after(page), None);
            }
        }
        // Hashed without the lock: argon2 takes about a second on a Pi Zero.
        let new_hash = match setup.new_password.as_ref().map(device_password::hash).transpose() {
            Ok(new_hash) => new_hash,
            Err(why) => return (self.not_saved(network, &why, client), None),
        };
        match save(&self.settings, &setup, new_hash, &hash) {
            Ok(saved) => {
                let page = match &setup.wifi {
                    Some(wifi) => {
                        tracing::info!("web: settings saved from the portal; connecting to {:?}", wifi.ssid);
                        page::connecting_page(&wifi.ssid, &saved.config.network.ap_ssid)
                    }
                    None => {
                        tracing::info!("web: settings saved from the portal (the network is managed elsewhere)");
                        page::saved_page()
                    }
                };
                (html(200, page), setup.wifi)
            }
            Err(SaveError::Refused(PasswordChanged)) => {
                let why = "the device password was changed from another phone meanwhile; type it and send again";
                (html(409, self.setup_page(network, &[], Some(why), client)), None)
            }
            Err(SaveError::NotSaved(why)) => (self.not_saved(network, &why, client), None),
        }
    }
}

/// The portal's destination: the first one saved.
fn saved_destination(config: &Config) -> Option<&Destination> {
    config.destinations.first()
}

/// The server the saved key was typed for, if a key is saved.
fn saved_key_server(config: &Config) -> Option<String> {
    saved_destination(config).filter(|d| !d.key.is_empty()).and_then(|d| config::server_of(&d.url))
}

impl State {
    /// What `client` typed, shown to it again after a failure (and to no one else).
    fn remember_prefill(&mut self, client: IpAddr, prefill: Prefill) {
        self.prefill.retain(|(ip, _)| *ip != client);
        self.prefill.push_back((client, prefill));
        if self.prefill.len() > PREFILL_MOST {
            self.prefill.pop_front();
        }
    }

    fn setup_page(
        &self,
        config: &Config,
        network: &NetworkStatus,
        errors: &[FieldError],
        problem: Option<&str>,
        client: IpAddr,
    ) -> String {
        let mut prefill = self.prefill.iter().find(|(ip, _)| *ip == client).map(|(_, p)| p.clone()).unwrap_or_default();
        if let Some(saved) = saved_destination(config).filter(|_| prefill.preset.is_empty()) {
            let preset = presets::for_url(&saved.url);
            prefill.preset = preset.id.into();
            if preset.url.is_none() {
                prefill.url = saved.url.clone();
            }
        }
        page::setup_page(&SetupPage {
            network,
            prefill: &prefill,
            errors,
            key_saved: saved_destination(config).is_some_and(|d| !d.key.is_empty()),
            password_set: !config.web.password_hash.is_empty(),
            problem,
        })
    }
}

/// The setup refused: the device password changed since the form was read.
pub(super) struct PasswordChanged;

/// Applies the setup (and the new password's hash, if any) to the user's settings,
/// validated whole and saved atomically, unless the device password is no longer `hash`;
/// returns the settings now in force.
pub(super) fn save(
    settings: &Settings,
    setup: &Setup,
    new_hash: Option<Secret>,
    hash: &Secret,
) -> Result<Snapshot<Loaded>, SaveError<PasswordChanged>> {
    settings.save(|config| {
        if config.web.password_hash != *hash {
            return Err(PasswordChanged);
        }
        let key = match &setup.key {
            Some(key) => key.clone(),
            None => config.destinations.first().map(|d| d.key.clone()).unwrap_or_default(),
        };
        let name = config.destinations.first().map_or_else(|| setup.preset.id.to_string(), |d| d.name.clone());
        let destination = Destination { name, url: setup.url.clone(), key, enabled: true };
        match config.destinations.first_mut() {
            Some(first) => *first = destination,
            None => config.destinations.push(destination),
        }
        if let Some(hash) = new_hash {
            config.web.password_hash = hash;
        }
        Ok(())
    })
}
