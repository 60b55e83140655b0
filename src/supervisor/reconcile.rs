//! What a reload changes (pure): the producer is rebuilt only when what its plan
//! depends on changed; otherwise destinations are matched by name and only those whose
//! settings changed are touched.

use crate::config::Config;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// Video, audio or the preview changed: everything stops and starts again.
    Rebuild,
    /// The producer stays; each destination by name, in the new settings' order, then
    /// the removed ones.
    Destinations(Vec<(String, Change)>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Same URL, key and enabled: its connection stays as it is.
    Keep,
    /// Changed: its connection (if any) stops, and it starts with the new settings.
    Restart,
    /// Gone from the settings: stopped and detached from the fanout.
    Remove,
    /// New: started.
    Add,
}

/// The settings the producer's plan is made from.
fn producer_settings_differ(old: &Config, new: &Config) -> bool {
    old.video != new.video || old.audio != new.audio || old.web.preview != new.web.preview
}

pub fn reconcile(old: &Config, new: &Config) -> Reload {
    if producer_settings_differ(old, new) {
        return Reload::Rebuild;
    }
    let mut changes: Vec<(String, Change)> = new
        .destinations
        .iter()
        .map(|d| {
            let change = match old.destinations.iter().find(|o| o.name == d.name) {
                Some(o) if o == d => Change::Keep,
                Some(_) => Change::Restart,
                None => Change::Add,
            };
            (d.name.clone(), change)
        })
        .collect();
    changes.extend(
        old.destinations
            .iter()
            .filter(|o| !new.destinations.iter().any(|d| d.name == o.name))
            .map(|o| (o.name.clone(), Change::Remove)),
    );
    Reload::Destinations(changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Destination;
    use crate::secrets::Secret;

    fn destination(name: &str, url: &str, key: &str, enabled: bool) -> Destination {
        Destination { name: name.into(), url: url.into(), key: Secret::new(key), enabled }
    }

    fn config(destinations: Vec<Destination>) -> Config {
        Config { destinations, ..Default::default() }
    }

    #[test]
    fn destinations_are_matched_by_name_and_only_changed_ones_touched() {
        let old = config(vec![
            destination("a", "rtmp://h/live", "ka", true),
            destination("b", "rtmp://h/live", "kb", true),
            destination("c", "rtmp://h/live", "kc", true),
            destination("gone", "rtmp://h/live", "kg", true),
        ]);
        let mut new = config(vec![
            destination("new", "rtmp://h/live", "kn", true),
            destination("a", "rtmp://h/live", "ka", true),
            destination("b", "rtmp://h/live", "kb", false),
            destination("c", "rtmp://h/live", "other-key", true),
        ]);
        new.network.ap_ssid = "another".into();
        new.update.check_every_s = 600;
        let expected = [
            ("new", Change::Add),
            ("a", Change::Keep),
            ("b", Change::Restart),
            ("c", Change::Restart),
            ("gone", Change::Remove),
        ];
        assert_eq!(
            reconcile(&old, &new),
            Reload::Destinations(expected.iter().map(|(n, c)| (n.to_string(), *c)).collect())
        );
        new.destinations[1].url = "rtmps://h/live".into();
        assert!(matches!(&reconcile(&old, &new), Reload::Destinations(c) if c[1] == ("a".into(), Change::Restart)));
    }

    #[test]
    fn what_the_producer_is_made_from_rebuilds_everything() {
        let old = config(vec![destination("a", "rtmp://h/live", "ka", true)]);
        let mut new = old.clone();
        new.video.bitrate_kbps = 1000;
        assert_eq!(reconcile(&old, &new), Reload::Rebuild);
        let mut new = old.clone();
        new.audio.bitrate_kbps = 64;
        assert_eq!(reconcile(&old, &new), Reload::Rebuild);
        let mut new = old.clone();
        new.web.preview = false;
        assert_eq!(reconcile(&old, &new), Reload::Rebuild);
        assert_eq!(reconcile(&old, &old), Reload::Destinations(vec![("a".into(), Change::Keep)]));
    }
}
