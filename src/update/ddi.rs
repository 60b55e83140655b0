//! A hawkBit DDI client (hawkBit, gooseBit): poll, deployment, feedback, configData,
//! cancel acknowledgement.
//!
//! Invariants: the server's JSON is parsed into typed values by pure functions here,
//! and anything else is an error quoting a short, scrubbed excerpt; the token is a
//! [`Secret`], sent only to the server's own origin (never to a download host
//! elsewhere) and never shown. API boundary: [`Server`] does the I/O through
//! [`Client`]; parsing is `parse_*`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use url::Url;

use super::download::{Artifact, Digest, DigestKind};
use super::http::{Client, check_scheme, excerpt, shown};
use crate::secrets::Secret;

/// How the controller proves who it is.
#[derive(Clone, Debug, Default)]
pub enum Auth {
    #[default]
    None,
    /// `Authorization: TargetToken …`: this box's own token.
    Target(Secret),
    /// `Authorization: GatewayToken …`: the tenant's shared token.
    Gateway(Secret),
}

impl Auth {
    fn header(&self) -> Option<Secret> {
        match self {
            Auth::None => None,
            Auth::Target(token) => Some(Secret::new(format!("TargetToken {}", token.expose()))),
            Auth::Gateway(token) => Some(Secret::new(format!("GatewayToken {}", token.expose()))),
        }
    }

    fn token(&self) -> Option<&Secret> {
        match self {
            Auth::None => None,
            Auth::Target(token) | Auth::Gateway(token) => Some(token),
        }
    }
}

/// What a poll answers: when to poll again and what there is to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Poll {
    pub sleep: Duration,
    pub deployment: Option<Url>,
    pub config_data: Option<Url>,
    pub cancel: Option<Url>,
}

/// DDI's handling types for the download and the update of an action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handling {
    Skip,
    Attempt,
    Forced,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deployment {
    pub action_id: String,
    pub download: Handling,
    pub update: Handling,
    /// The version the server names for the first chunk, if any.
    pub version: Option<String>,
    pub artifacts: Vec<Named>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Named {
    pub filename: String,
    pub artifact: Artifact,
}

/// DDI's execution states in use here (DDI also has scheduled, resumed, downloaded,
/// canceled and rejected).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Execution {
    Proceeding,
    Closed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finished {
    None,
    Success,
    Failure,
}

/// A status report on an action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Feedback {
    pub execution: Execution,
    pub finished: Finished,
    /// (done, of): DDI's `progress.cnt` / `progress.of`.
    pub progress: Option<(u64, u64)>,
    pub details: Vec<String>,
}

/// The DDI JSON of a feedback.
pub fn feedback_json(feedback: &Feedback) -> Value {
    let execution = match feedback.execution {
        Execution::Proceeding => "proceeding",
        Execution::Closed => "closed",
    };
    let finished = match feedback.finished {
        Finished::None => "none",
        Finished::Success => "success",
        Finished::Failure => "failure",
    };
    let mut result = json!({ "finished": finished });
    if let Some((cnt, of)) = feedback.progress {
        result["progress"] = json!({ "cnt": cnt, "of": of });
    }
    json!({ "status": { "execution": execution, "result": result, "details": feedback.details } })
}

/// The attributes a box reports in configData: gooseBit reads `hw_boardname` (its
/// hardware model, matched against a bundle's `compatible`) and `sw_version`.
pub fn attributes(version: &str, compatible: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("compatible".into(), compatible.into()),
        ("version".into(), version.into()),
        ("hw_boardname".into(), compatible.into()),
        ("sw_version".into(), version.into()),
    ])
}

/// `{url}/{tenant}/controller/v1/{controller_id}`.
pub fn controller_url(server: &Url, tenant: &str, controller_id: &str) -> Result<Url, String> {
    for (what, value) in [("tenant", tenant), ("controller id", controller_id)] {
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
            return Err(format!("the hawkBit {what} {value:?} must be letters, digits, '.', '_' or '-'"));
        }
    }
    let mut base = server.clone();
    if !base.path().ends_with('/') {
        base.set_path(&format!("{}/", base.path()));
    }
    base.join(&format!("{tenant}/controller/v1/{controller_id}"))
        .map_err(|e| format!("the hawkBit server URL {}: {e}", shown(server)))
}

fn not_ddi(text: &str, secrets: &[Secret], why: &str) -> String {
    format!("the hawkBit server answered with something that is not DDI JSON ({why}): {}", excerpt(text, secrets))
}

fn parse_json(text: &str, secrets: &[Secret]) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| not_ddi(text, secrets, &e.to_string()))
}

fn link(value: &Value, name: &str, text: &str, secrets: &[Secret]) -> Result<Option<Url>, String> {
    let Some(entry) = value["_links"].get(name) else { return Ok(None) };
    let href = entry["href"].as_str().ok_or_else(|| not_ddi(text, secrets, &format!("_links.{name} has no href")))?;
    Url::parse(href).map(Some).map_err(|e| not_ddi(text, secrets, &format!("_links.{name}.href: {e}")))
}

/// DDI's `HH:MM:SS`.
pub fn parse_sleep(text: &str) -> Result<Duration, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let numbers: Option<Vec<u64>> = parts.iter().map(|p| p.parse().ok()).collect();
    match numbers.as_deref() {
        Some(&[h, m, s]) if parts.len() == 3 && m < 60 && s < 60 => Ok(Duration::from_secs(h * 3600 + m * 60 + s)),
        _ => Err(format!("the polling interval {text:?} is not HH:MM:SS")),
    }
}

pub fn parse_poll(text: &str, secrets: &[Secret]) -> Result<Poll, String> {
    let value = parse_json(text, secrets)?;
    let sleep = value["config"]["polling"]["sleep"]
        .as_str()
        .ok_or_else(|| not_ddi(text, secrets, "no config.polling.sleep"))?;
    Ok(Poll {
        sleep: parse_sleep(sleep).map_err(|why| not_ddi(text, secrets, &why))?,
        deployment: link(&value, "deploymentBase", text, secrets)?,
        config_data: link(&value, "configData", text, secrets)?,
        cancel: link(&value, "cancelAction", text, secrets)?,
    })
}

fn parse_handling(value: &Value, field: &str, text: &str, secrets: &[Secret]) -> Result<Handling, String> {
    match value.as_str() {
        Some("skip") => Ok(Handling::Skip),
        Some("attempt") => Ok(Handling::Attempt),
        Some("forced") => Ok(Handling::Forced),
        _ => Err(not_ddi(text, secrets, &format!("deployment.{field} is not skip, attempt or forced"))),
    }
}

/// An action id as DDI gives it: a string or a number.
fn parse_id(value: &Value) -> Option<String> {
    match value {
        Value::String(id) if !id.is_empty() => Some(id.clone()),
        Value::Number(id) => Some(id.to_string()),
        _ => None,
    }
}

pub fn parse_deployment(text: &str, secrets: &[Secret]) -> Result<Deployment, String> {
    let value = parse_json(text, secrets)?;
    let bad = |why: &str| not_ddi(text, secrets, why);
    let action_id = parse_id(&value["id"]).ok_or_else(|| bad("no action id"))?;
    let deployment = &value["deployment"];
    let chunks = deployment["chunks"].as_array().ok_or_else(|| bad("no deployment.chunks"))?;
    let mut artifacts = Vec::new();
    for artifact in chunks.iter().flat_map(|c| c["artifacts"].as_array().into_iter().flatten()) {
        let filename = artifact["filename"].as_str().ok_or_else(|| bad("an artifact without filename"))?;
        let size = (artifact["size"].as_u64().filter(|&n| n > 0))
            .ok_or_else(|| bad(&format!("artifact {filename} has no size above 0")))?;
        let hashes = &artifact["hashes"];
        let digest = match (hashes["sha256"].as_str(), hashes["sha1"].as_str()) {
            (Some(hex), _) => Digest::parse(DigestKind::Sha256, hex, "hashes.sha256"),
            (None, Some(hex)) => Digest::parse(DigestKind::Sha1, hex, "hashes.sha1"),
            (None, None) => Err(format!("artifact {filename} has neither a sha256 nor a sha1 hash")),
        }
        .map_err(|why| bad(&why))?;
        // `download` is hawkBit's HTTPS link, `download-http` the plain one.
        let url = match link(artifact, "download", text, secrets)? {
            Some(url) => url,
            None => link(artifact, "download-http", text, secrets)?
                .ok_or_else(|| bad(&format!("artifact {filename} has no download link")))?,
        };
        artifacts.push(Named { filename: filename.into(), artifact: Artifact { url, size, digest } });
    }
    Ok(Deployment {
        action_id,
        download: parse_handling(&deployment["download"], "download", text, secrets)?,
        update: parse_handling(&deployment["update"], "update", text, secrets)?,
        version: chunks.first().and_then(|c| c["version"].as_str()).map(String::from),
        artifacts,
    })
}

/// The action a `cancelAction` link names.
pub fn parse_cancel(text: &str, secrets: &[Secret]) -> Result<String, String> {
    let value = parse_json(text, secrets)?;
    parse_id(&value["id"]).ok_or_else(|| not_ddi(text, secrets, "no cancel action id"))
}

/// The `Authorization` value for `url`: only on the server's own origin.
fn authorization(auth: &Auth, base: &Url, url: &Url) -> Option<Secret> {
    (url.origin() == base.origin()).then(|| auth.header()).flatten()
}

/// One controller on one hawkBit server.
pub struct Server {
    client: Client,
    base: Url,
    auth: Auth,
    allow_http: bool,
}

impl Server {
    pub fn new(client: Client, base: Url, auth: Auth, allow_http: bool) -> Result<Server, String> {
        check_scheme(&base, allow_http, "the hawkBit server")?;
        Ok(Server { client, base, auth, allow_http })
    }

    fn secrets(&self) -> Vec<Secret> {
        self.auth.token().cloned().into_iter().collect()
    }

    /// The `Authorization` value for `url`.
    pub fn auth_for(&self, url: &Url) -> Option<Secret> {
        authorization(&self.auth, &self.base, url)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Sends a request; the answer's body if it is a 2xx.
    fn exchange(&self, method: &str, url: &Url, body: Option<&Value>) -> Result<String, String> {
        check_scheme(url, self.allow_http, "the hawkBit link")?;
        let agent = self.client.agent();
        let auth = self.auth_for(url);
        let result = match body {
            None => {
                let mut request = agent.get(url.as_str()).header("Accept", "application/hal+json, application/json");
                if let Some(auth) = &auth {
                    request = request.header("Authorization", auth.expose());
                }
                request.call()
            }
            Some(body) => {
                let request = if method == "PUT" { agent.put(url.as_str()) } else { agent.post(url.as_str()) };
                let mut request = request.header("Content-Type", "application/json");
                if let Some(auth) = &auth {
                    request = request.header("Authorization", auth.expose());
                }
                request.send(body.to_string().as_bytes())
            }
        };
        let mut response = result.map_err(|e| format!("the hawkBit server {}", self.client.describe(url, &e)))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(1024 * 1024)
            .read_to_string()
            .map_err(|e| format!("the hawkBit server {}: {e}", shown(url)))?;
        match status {
            200..=299 => Ok(text),
            401 | 403 => {
                Err(format!("the hawkBit server {} refused the controller's credentials (HTTP {status})", shown(url)))
            }
            _ => {
                let quoted = excerpt(&text, &self.secrets());
                Err(format!("the hawkBit server {} answered HTTP {status}: {quoted}", shown(url)))
            }
        }
    }

    pub fn poll(&self) -> Result<Poll, String> {
        parse_poll(&self.exchange("GET", &self.base, None)?, &self.secrets())
    }

    /// The action behind a `deploymentBase` link; its download links pass the HTTPS rule.
    pub fn deployment(&self, link: &Url) -> Result<Deployment, String> {
        let deployment = parse_deployment(&self.exchange("GET", link, None)?, &self.secrets())?;
        for named in &deployment.artifacts {
            check_scheme(&named.artifact.url, self.allow_http, "the hawkBit download link")?;
        }
        Ok(deployment)
    }

    pub fn feedback(&self, action_id: &str, feedback: &Feedback) -> Result<(), String> {
        let url = self.under(&format!("deploymentBase/{action_id}/feedback"))?;
        self.exchange("POST", &url, Some(&feedback_json(feedback))).map(drop)
    }

    /// PUTs the box's attributes to the server's configData link.
    pub fn config_data(&self, link: &Url, attributes: &BTreeMap<String, String>) -> Result<(), String> {
        self.exchange("PUT", link, Some(&json!({ "mode": "merge", "data": attributes }))).map(drop)
    }

    /// Acknowledges a cancellation as done: nothing of an action runs between polls.
    pub fn cancel(&self, link: &Url) -> Result<String, String> {
        let id = parse_cancel(&self.exchange("GET", link, None)?, &self.secrets())?;
        let url = self.under(&format!("cancelAction/{id}/feedback"))?;
        let done = Feedback {
            execution: Execution::Closed,
            finished: Finished::Success,
            progress: None,
            details: vec!["canceled: nothing was running".into()],
        };
        self.exchange("POST", &url, Some(&feedback_json(&done)))?;
        Ok(id)
    }

    fn under(&self, path: &str) -> Result<Url, String> {
        let mut base = self.base.clone();
        base.set_path(&format!("{}/", self.base.path().trim_end_matches('/')));
        base.join(path).map_err(|e| format!("{}: {e}", shown(&self.base)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLL: &str = r#"{"config":{"polling":{"sleep":"00:01:30"}},"_links":{
        "deploymentBase":{"href":"https://hb.example/DEFAULT/controller/v1/box/deploymentBase/5?c=-2129030598"},
        "configData":{"href":"https://hb.example/DEFAULT/controller/v1/box/configData"}}}"#;

    // As hawkBit's DDI documentation shows it (trimmed).
    const HAWKBIT_DEPLOYMENT: &str = r#"{"id":"8","deployment":{"download":"forced","update":"attempt",
        "maintenanceWindow":"available","chunks":[{"part":"os","version":"1.2.3","name":"bundle",
        "artifacts":[{"filename":"x.raucb","hashes":{"sha1":"2d86c2a659e364e9abba49ea6ffcd53dd5559f05",
        "md5":"0d1b08c34858921bc7c662b228acb7ba",
        "sha256":"a03b221c6c6eae7122ca51695d456d5222e524889136394944b2f9763b483615"},"size":3,
        "_links":{"download-http":{"href":"http://hb.example/x.raucb"},
        "download":{"href":"https://hb.example/x.raucb"}}}]}]},"actionHistory":{"status":"RUNNING"}}"#;

    // As gooseBit 0.2.12 answers.
    const GOOSEBIT_DEPLOYMENT: &str = r#"{"id":"1","deployment":{"download":"forced","update":"forced",
        "chunks":[{"part":"os","version":"1.2.3","name":"x.raucb","artifacts":[{"filename":"x.raucb",
        "hashes":{"sha1":"ef0b8d91ccbdcbee1303e9cc35ce7404da575b29"},"size":206453,
        "_links":{"download":{"href":"http://127.0.0.1:47011/DEFAULT/controller/v1/box1/download"}}}]}]}}"#;

    #[test]
    fn poll_with_links() {
        let poll = parse_poll(POLL, &[]).unwrap();
        assert_eq!(poll.sleep, Duration::from_secs(90));
        assert!(poll.deployment.unwrap().as_str().ends_with("deploymentBase/5?c=-2129030598"));
        assert!(poll.config_data.is_some());
        assert_eq!(poll.cancel, None);
    }

    #[test]
    fn sleep_is_hh_mm_ss() {
        assert_eq!(parse_sleep("12:00:00"), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_sleep("00:00:05"), Ok(Duration::from_secs(5)));
        for bad in ["5", "00:61:00", "a:b:c", "1:2:3:4", ""] {
            assert!(parse_sleep(bad).unwrap_err().contains("HH:MM:SS"), "{bad}");
        }
    }

    #[test]
    fn hawkbit_deployment_prefers_sha256_and_https() {
        let d = parse_deployment(HAWKBIT_DEPLOYMENT, &[]).unwrap();
        assert_eq!((d.action_id.as_str(), d.download, d.update), ("8", Handling::Forced, Handling::Attempt));
        assert_eq!(d.version.as_deref(), Some("1.2.3"));
        let a = &d.artifacts[0];
        assert_eq!(a.filename, "x.raucb");
        assert_eq!(a.artifact.url.as_str(), "https://hb.example/x.raucb");
        assert_eq!(a.artifact.size, 3);
        assert!(matches!(&a.artifact.digest, Digest::Sha256(h) if h.starts_with("a03b")));
    }

    #[test]
    fn goosebit_deployment_has_sha1_only() {
        let d = parse_deployment(GOOSEBIT_DEPLOYMENT, &[]).unwrap();
        assert_eq!(d.action_id, "1");
        assert_eq!(d.artifacts[0].artifact.digest, Digest::Sha1("ef0b8d91ccbdcbee1303e9cc35ce7404da575b29".into()));
    }

    #[test]
    fn garbage_is_named_and_masked() {
        let token = Secret::new("s3cr3t-token");
        let err = parse_poll("<html>bad gateway s3cr3t-token</html>", std::slice::from_ref(&token)).unwrap_err();
        assert!(err.starts_with("the hawkBit server answered with something that is not DDI JSON"), "{err}");
        assert!(err.contains("<html>bad gateway ****"), "{err}");
        let err = parse_poll(r#"{"config":{}}"#, &[]).unwrap_err();
        assert!(err.contains("no config.polling.sleep"), "{err}");
        let err = parse_deployment(&GOOSEBIT_DEPLOYMENT.replace("forced", "maybe"), &[]).unwrap_err();
        assert!(err.contains("deployment.download is not skip, attempt or forced"), "{err}");
        let err = parse_deployment(&GOOSEBIT_DEPLOYMENT.replace("\"sha1\"", "\"md5\""), &[]).unwrap_err();
        assert!(err.contains("neither a sha256 nor a sha1"), "{err}");
    }

    #[test]
    fn cancel_actions_name_their_id() {
        assert_eq!(parse_cancel(r#"{"id":"11","cancelAction":{"stopId":"11"}}"#, &[]), Ok("11".into()));
        assert_eq!(parse_cancel(r#"{"id":11}"#, &[]), Ok("11".into()));
        assert!(parse_cancel(r#"{"cancelAction":{}}"#, &[]).unwrap_err().contains("no cancel action id"));
    }

    #[test]
    fn feedback_shape() {
        let feedback = Feedback {
            execution: Execution::Proceeding,
            finished: Finished::None,
            progress: Some((1, 4)),
            details: vec!["downloading".into()],
        };
        assert_eq!(
            feedback_json(&feedback),
            json!({"status": {"execution": "proceeding", "result": {"finished": "none", "progress": {"cnt": 1, "of": 4}},
                "details": ["downloading"]}})
        );
    }

    #[test]
    fn controller_urls() {
        let server = Url::parse("https://hb.example/base").unwrap();
        assert_eq!(
            controller_url(&server, "DEFAULT", "box-1").unwrap().as_str(),
            "https://hb.example/base/DEFAULT/controller/v1/box-1"
        );
        assert!(controller_url(&server, "DEFAULT", "a/b").unwrap_err().contains("controller id \"a/b\""));
    }

    #[test]
    fn the_token_goes_only_to_the_server_itself() {
        let base = Url::parse("https://hb.example/DEFAULT/controller/v1/box").unwrap();
        let auth = Auth::Target(Secret::new("t0k3n"));
        let own = authorization(&auth, &base, &Url::parse("https://hb.example/x").unwrap()).unwrap();
        assert_eq!(own.expose(), "TargetToken t0k3n");
        assert!(authorization(&auth, &base, &Url::parse("https://cdn.example/x").unwrap()).is_none());
        assert!(authorization(&auth, &base, &Url::parse("http://hb.example/x").unwrap()).is_none());
        let gateway = Auth::Gateway(Secret::new("g"));
        assert_eq!(authorization(&gateway, &base, &base).unwrap().expose(), "GatewayToken g");
        assert!(authorization(&Auth::None, &base, &base).is_none());
    }
}
