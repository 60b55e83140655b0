//! Where bundles come from: a hawkBit DDI server or a manifest, behind one question
//! ("what is offered?") and one action (fetch it, telling the server how it went).
//!
//! Invariant: an [`Offer`] names exactly one bundle with its size and digest; for
//! hawkBit it also names the action that every report refers to.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use url::Url;

use super::ddi::{self, Execution, Feedback, Finished, Handling};
use super::download::{self, Artifact};
use super::http::{self, Client};
use super::manifest;
use super::record::Origin;
use super::version;
use crate::config::{UpdateConfig, UpdateSource};

pub enum Source {
    Hawkbit {
        server: ddi::Server,
        /// What configData reports when the server asks (gooseBit asks before it offers).
        attributes: BTreeMap<String, String>,
        /// As configured, or the host name.
        controller_id: String,
    },
    Manifest {
        client: Client,
        url: Url,
        allow_http: bool,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    pub version: Option<String>,
    pub compatible: Option<String>,
    pub filename: String,
    pub artifact: Artifact,
    /// hawkBit's action id and its handling of the update.
    pub action: Option<(String, Handling)>,
}

/// What a look at the source found, and when the source wants the next look (hawkBit
/// says; a manifest does not).
pub struct Checked {
    pub offer: Option<Offer>,
    pub sleep: Option<std::time::Duration>,
}

/// The box's name on the update server when none is set: its host name.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default()
}

/// The bundle among a deployment's artifacts: the first `.raucb`, else the only one.
fn pick(deployment: ddi::Deployment) -> Result<Offer, String> {
    let count = deployment.artifacts.len();
    let mut artifacts = deployment.artifacts.into_iter();
    let named = match count {
        0 => return Err(format!("hawkBit action {} offers no artifact", deployment.action_id)),
        1 => artifacts.next(),
        _ => artifacts.find(|a| a.filename.ends_with(".raucb")),
    }
    .ok_or_else(|| {
        format!("hawkBit action {} offers {count} artifacts, none of them a .raucb", deployment.action_id)
    })?;
    Ok(Offer {
        version: deployment.version,
        compatible: None,
        filename: named.filename,
        artifact: named.artifact,
        action: Some((deployment.action_id, deployment.update)),
    })
}

/// The file name an offer is saved under: its own, reduced to a safe base name.
pub fn file_name(offer: &Offer) -> String {
    let base = offer.filename.rsplit('/').next().unwrap_or_default();
    let safe: String =
        base.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    if safe.is_empty() || safe.starts_with('.') { format!("update{safe}") } else { safe }
}

impl Source {
    /// The source `[update]` names (none for "none"). `version` and `compatible` are
    /// what the box tells hawkBit about itself. Trust: `SSL_CERT_FILE`, else the system's
    /// CA certificates.
    pub fn from_config(config: &UpdateConfig, version: &str, compatible: &str) -> Result<Option<Source>, String> {
        let client = || {
            let ca = http::ca_file(None, std::env::var("SSL_CERT_FILE").ok());
            Client::new(&ca, std::time::Duration::from_secs(config.timeout_s.into()))
        };
        match config.source {
            UpdateSource::None => Ok(None),
            UpdateSource::Hawkbit => {
                let server = Url::parse(&config.hawkbit_url).map_err(|e| format!("update.hawkbit_url: {e}"))?;
                let id = if config.controller_id.is_empty() { host_name() } else { config.controller_id.clone() };
                let auth = match (&config.target_token, &config.gateway_token) {
                    (t, _) if !t.is_empty() => ddi::Auth::Target(t.clone()),
                    (_, g) if !g.is_empty() => ddi::Auth::Gateway(g.clone()),
                    _ => ddi::Auth::None,
                };
                let base = ddi::controller_url(&server, &config.tenant, &id)?;
                // Plain http only when the person wrote it so (config allows it for hawkBit).
                let allow_http = server.scheme() == "http";
                let server = ddi::Server::new(client()?, base, auth, allow_http)?;
                let attributes = ddi::attributes(version, compatible);
                Ok(Some(Source::Hawkbit { server, attributes, controller_id: id }))
            }
            UpdateSource::Manifest => {
                let url = Url::parse(&config.manifest_url).map_err(|e| format!("update.manifest_url: {e}"))?;
                Ok(Some(Source::Manifest { client: client()?, url, allow_http: false }))
            }
        }
    }

    /// Whether to take `offer` on a box running `running`: hawkBit's are assigned (a
    /// refusal is reported to it); a manifest's only when it names another version that
    /// is newer and is for this device (an older one only from the console: `update
    /// install --force`).
    pub fn wanted(&self, offer: &Offer, running: Option<&str>, compatible: &str) -> bool {
        match self {
            Source::Hawkbit { .. } => true,
            Source::Manifest { .. } => {
                let newer = match (offer.version.as_deref(), running) {
                    (Some(offered), Some(running)) => version::compare(offered, running).is_gt(),
                    _ => true,
                };
                newer && offer.compatible.as_deref().is_none_or(|c| c == compatible)
            }
        }
    }

    /// Whom the outcome of `offer` concerns, as the pending record keeps it.
    pub fn origin(&self, offer: &Offer, config: &UpdateConfig) -> Origin {
        match (self, &offer.action) {
            (Source::Hawkbit { controller_id, .. }, Some((action_id, _))) => Origin::Hawkbit {
                server: config.hawkbit_url.clone(),
                tenant: config.tenant.clone(),
                controller_id: controller_id.clone(),
                action_id: action_id.clone(),
            },
            _ => Origin::Manifest { url: config.manifest_url.clone() },
        }
    }

    /// Intermediate feedback on a hawkBit action ("installed, rebooting").
    pub fn proceeding(&self, offer: &Offer, detail: &str) -> Result<(), String> {
        let (Source::Hawkbit { server, .. }, Some((action, _))) = (self, &offer.action) else { return Ok(()) };
        let feedback = Feedback {
            execution: Execution::Proceeding,
            finished: Finished::None,
            progress: None,
            details: vec![detail.into()],
        };
        server.feedback(action, &feedback)
    }

    /// Closes hawkBit action `action_id` with its outcome (the manifest has nobody to tell).
    pub fn close(&self, action_id: &str, success: bool, detail: &str) -> Result<(), String> {
        let Source::Hawkbit { server, .. } = self else { return Ok(()) };
        let finished = if success { Finished::Success } else { Finished::Failure };
        let feedback =
            Feedback { execution: Execution::Closed, finished, progress: None, details: vec![detail.into()] };
        server.feedback(action_id, &feedback)
    }

    /// What the source offers now, if anything. Answers hawkBit's configData and
    /// cancelAction requests on the way.
    pub fn check(&self) -> Result<Checked, String> {
        match self {
            Source::Manifest { client, url, allow_http } => {
                let m = manifest::fetch(client, url, *allow_http)?;
                let filename = m.artifact.url.path_segments().and_then(|mut s| s.next_back()).unwrap_or("").to_string();
                let offer = Offer {
                    version: Some(m.version),
                    compatible: Some(m.compatible),
                    filename,
                    artifact: m.artifact,
                    action: None,
                };
                Ok(Checked { offer: Some(offer), sleep: None })
            }
            Source::Hawkbit { server, attributes, .. } => {
                let mut poll = server.poll()?;
                if let Some(link) = &poll.config_data {
                    server.config_data(link, attributes)?;
                    poll = server.poll()?;
                }
                if let Some(link) = &poll.cancel {
                    let id = server.cancel(link)?;
                    tracing::info!("hawkBit canceled action {id}: acknowledged");
                }
                let offer = match &poll.deployment {
                    Some(link) => Some(pick(server.deployment(link)?)?),
                    None => None,
                };
                Ok(Checked { offer, sleep: Some(poll.sleep) })
            }
        }
    }

    /// Downloads `offer` into `dir`; hawkBit hears that it runs and, on an error, that
    /// it failed. Returns the file.
    pub fn fetch(&self, offer: &Offer, dir: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<PathBuf, String> {
        let dest = dir.join(file_name(offer));
        match (self, &offer.action) {
            (Source::Manifest { client, .. }, _) => {
                download::download(client, &offer.artifact, &dest, None, progress).map(|()| dest)
            }
            (Source::Hawkbit { server, .. }, Some((action, _))) => {
                let size = offer.artifact.size;
                let report = |execution, finished, progress, detail: String| Feedback {
                    execution,
                    finished,
                    progress,
                    details: vec![detail],
                };
                let start = format!("Downloading {}: {size} bytes", offer.filename);
                server.feedback(action, &report(Execution::Proceeding, Finished::None, Some((0, size)), start))?;
                let auth = server.auth_for(&offer.artifact.url);
                match download::download(server.client(), &offer.artifact, &dest, auth.as_ref(), progress) {
                    Ok(()) => {
                        let done = format!("Downloaded 100%: {}, {size} bytes, digest checked", offer.filename);
                        server.feedback(
                            action,
                            &report(Execution::Proceeding, Finished::None, Some((size, size)), done),
                        )?;
                        Ok(dest)
                    }
                    Err(why) => {
                        let failed = report(Execution::Closed, Finished::Failure, None, why.clone());
                        if let Err(also) = server.feedback(action, &failed) {
                            tracing::warn!("could not report the failed download: {also}");
                        }
                        Err(why)
                    }
                }
            }
            (Source::Hawkbit { .. }, None) => Err("a hawkBit offer without an action".into()),
        }
    }

    /// Reports the end of a hawkBit action (the manifest has nobody to tell).
    pub fn finish(&self, offer: &Offer, success: bool, detail: &str) -> Result<(), String> {
        match &offer.action {
            Some((action, _)) => self.close(action, success, detail),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::update::download::Digest;

    fn named(filename: &str) -> ddi::Named {
        let url = Url::parse(&format!("https://hb.example/{filename}")).unwrap();
        ddi::Named {
            filename: filename.into(),
            artifact: Artifact { url, size: 1, digest: Digest::Sha1("0".repeat(40)) },
        }
    }

    fn deployment(artifacts: Vec<ddi::Named>) -> ddi::Deployment {
        ddi::Deployment {
            action_id: "7".into(),
            download: Handling::Forced,
            update: Handling::Attempt,
            version: Some("2.0.0".into()),
            artifacts,
        }
    }

    #[test]
    fn the_bundle_is_picked_among_artifacts() {
        let offer = pick(deployment(vec![named("notes.txt"), named("b.raucb")])).unwrap();
        assert_eq!(offer.filename, "b.raucb");
        assert_eq!(offer.action, Some(("7".into(), Handling::Attempt)));
        assert_eq!(pick(deployment(vec![named("only.bin")])).unwrap().filename, "only.bin");
        assert!(pick(deployment(vec![])).unwrap_err().contains("offers no artifact"));
        assert!(pick(deployment(vec![named("a"), named("b")])).unwrap_err().contains("none of them a .raucb"));
    }

    #[test]
    fn the_record_names_the_controller_that_polled() {
        let config = UpdateConfig {
            source: UpdateSource::Hawkbit,
            hawkbit_url: "https://hb.example".into(),
            ..UpdateConfig::default()
        };
        let source = Source::from_config(&config, "1.0", "msl").unwrap().unwrap();
        let offer = pick(deployment(vec![named("b.raucb")])).unwrap();
        let Origin::Hawkbit { controller_id, action_id, .. } = source.origin(&offer, &config) else {
            panic!("a hawkBit origin")
        };
        assert_eq!((controller_id.as_str(), action_id.as_str()), (host_name().as_str(), "7"));
        assert!(!controller_id.is_empty(), "the host name stands in for an empty update.controller_id");
    }

    #[test]
    fn file_names_stay_in_their_directory() {
        let mut offer = pick(deployment(vec![named("../../etc/passwd")])).unwrap();
        assert_eq!(file_name(&offer), "passwd");
        offer.filename = "..".into();
        assert_eq!(file_name(&offer), "update..");
        offer.filename = "a b.raucb".into();
        assert_eq!(file_name(&offer), "a_b.raucb");
    }
}
