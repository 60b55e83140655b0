//! The user's settings file as a TOML table, held against what this version knows.
//!
//! **Invariant:** a key this version does not know (one a newer firmware wrote before a
//! rollback) is never fatal and never lost: `split` sets it apart, `save` puts it back.
//! And the file holds only what differs from the shipped defaults (`diff`), so a setting
//! nobody changed follows the defaults of whichever firmware runs.
//!
//! What is known is read off the types themselves: the table `Config::default()`
//! serialises to (with one destination) names every key there is.

use toml::{Table, Value};

use super::{Config, Destination};

/// A key this version does not know, where it was, and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Unknown {
    path: Vec<Step>,
    value: Value,
}

/// One step down the tree: a table's key, or the element of an array of tables with
/// this `name` (destinations are told apart by name; one without is taken by position).
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Element(Element),
}

#[derive(Debug, Clone, PartialEq)]
enum Element {
    Named(String),
    At(usize),
}

impl Unknown {
    /// `video.future_knob`, `destinations["yt"].future_knob`.
    pub fn path(&self) -> String {
        let mut shown = String::new();
        for step in &self.path {
            match step {
                Step::Key(key) if shown.is_empty() => shown.push_str(key),
                Step::Key(key) => {
                    shown.push('.');
                    shown.push_str(key);
                }
                Step::Element(Element::Named(name)) => shown.push_str(&format!("[{name:?}]")),
                Step::Element(Element::At(i)) => shown.push_str(&format!("[{i}]")),
            }
        }
        shown
    }
}

/// Every key there is, as a table.
fn schema() -> Table {
    let mut known = Config::default();
    known.destinations.push(Destination {
        name: String::new(),
        url: String::new(),
        key: crate::secrets::Secret::default(),
        enabled: true,
    });
    to_table(&known)
}

pub fn to_table(config: &Config) -> Table {
    Table::try_from(config).expect("the settings always serialise to a TOML table")
}

/// The part of `raw` this version knows, and the keys it does not.
pub fn split(raw: &Table) -> (Table, Vec<Unknown>) {
    let mut unknown = Vec::new();
    let known = split_table(raw, &schema(), &mut Vec::new(), &mut unknown);
    (known, unknown)
}

fn split_table(raw: &Table, schema: &Table, at: &mut Vec<Step>, unknown: &mut Vec<Unknown>) -> Table {
    let mut known = Table::new();
    for (key, value) in raw {
        at.push(Step::Key(key.clone()));
        match (schema.get(key), value) {
            (None, _) => unknown.push(Unknown { path: at.clone(), value: value.clone() }),
            (Some(Value::Table(inner)), Value::Table(table)) => {
                known.insert(key.clone(), Value::Table(split_table(table, inner, at, unknown)));
            }
            (Some(Value::Array(kinds)), Value::Array(items)) if matches!(kinds.first(), Some(Value::Table(_))) => {
                let Some(Value::Table(element_schema)) = kinds.first() else { unreachable!() };
                let items = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| match item {
                        Value::Table(table) => {
                            at.push(Step::Element(element_of(table, i)));
                            let known = split_table(table, element_schema, at, unknown);
                            at.pop();
                            Value::Table(known)
                        }
                        other => other.clone(),
                    })
                    .collect();
                known.insert(key.clone(), Value::Array(items));
            }
            // Known; a wrong type is the typed parse's to report.
            (Some(_), value) => {
                known.insert(key.clone(), value.clone());
            }
        }
        at.pop();
    }
    known
}

fn element_of(table: &Table, index: usize) -> Element {
    match table.get("name").and_then(Value::as_str) {
        Some(name) => Element::Named(name.to_string()),
        None => Element::At(index),
    }
}

/// What in `current` differs from `base`, key by key (arrays compare whole).
pub fn diff(current: &Table, base: &Table) -> Table {
    let mut changed = Table::new();
    for (key, value) in current {
        match (base.get(key), value) {
            (Some(old), value) if old == value => {}
            (Some(Value::Table(old)), Value::Table(table)) => {
                let inner = diff(table, old);
                if !inner.is_empty() {
                    changed.insert(key.clone(), Value::Table(inner));
                }
            }
            (_, value) => {
                changed.insert(key.clone(), value.clone());
            }
        }
    }
    changed
}

/// Puts the unknown keys back where they were. One inside a destination that is gone
/// goes with it.
pub fn restore(table: &mut Table, unknown: &[Unknown]) {
    for u in unknown {
        restore_one(table, &u.path, &u.value);
    }
}

fn restore_one(table: &mut Table, path: &[Step], value: &Value) {
    match path {
        [Step::Key(key)] => {
            table.entry(key.clone()).or_insert_with(|| value.clone());
        }
        [Step::Key(key), Step::Element(element), rest @ ..] => {
            let Some(Value::Array(items)) = table.get_mut(key) else { return };
            let found = items.iter_mut().enumerate().find_map(|(i, item)| match item {
                Value::Table(t) if element_of(t, i) == *element => Some(t),
                _ => None,
            });
            if let Some(t) = found {
                restore_one(t, rest, value);
            }
        }
        [Step::Key(key), rest @ ..] => {
            let entry = table.entry(key.clone()).or_insert_with(|| Value::Table(Table::new()));
            if let Value::Table(t) = entry {
                restore_one(t, rest, value);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> Table {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn unknown_keys_are_set_apart_wherever_they_are() {
        let raw = table(
            "future = 1\n[video]\nwidth = 640\nknob = \"x\"\n[later]\na = 1\n\
             [[destinations]]\nname = \"yt\"\nurl = \"rtmp://h/a\"\nmood = \"calm\"\n\
             [[destinations]]\nurl = \"rtmp://h/b\"\ncolour = 2\n",
        );
        let (known, unknown) = split(&raw);
        let paths: Vec<String> = unknown.iter().map(Unknown::path).collect();
        assert_eq!(paths, ["destinations[\"yt\"].mood", "destinations[1].colour", "future", "later", "video.knob"]);
        assert_eq!(
            known,
            table(
                "[video]\nwidth = 640\n[[destinations]]\nname = \"yt\"\nurl = \"rtmp://h/a\"\n\
                 [[destinations]]\nurl = \"rtmp://h/b\"\n"
            )
        );
    }

    #[test]
    fn restore_puts_them_back_and_drops_those_of_a_removed_destination() {
        let raw = table(
            "[video]\nknob = 3\n[later]\na = 1\n[[destinations]]\nname = \"yt\"\nmood = 1\n\
             [[destinations]]\nname = \"gone\"\nmood = 2\n",
        );
        let (_, unknown) = split(&raw);
        let mut saved = table("[[destinations]]\nname = \"yt\"\nurl = \"rtmp://h/a\"\n");
        restore(&mut saved, &unknown);
        assert_eq!(
            saved,
            table(
                "[video]\nknob = 3\n[later]\na = 1\n[[destinations]]\nname = \"yt\"\nurl = \"rtmp://h/a\"\nmood = 1\n"
            )
        );
    }

    #[test]
    fn diff_keeps_only_what_differs() {
        let base = to_table(&Config::default());
        let mut config = Config::default();
        config.video.width = 640;
        let changed = diff(&to_table(&config), &base);
        assert_eq!(changed, table("[video]\nwidth = 640\n"));
        assert_eq!(diff(&base, &base), Table::new());
    }
}
