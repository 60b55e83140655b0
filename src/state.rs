//! Published state: one writer per piece, any number of readers.
//!
//! Invariant: a [`Writer`] cannot be cloned, so the one thread holding it is the only one
//! that changes its value. Readers take whole snapshots (an `Arc`, never a lock held
//! across their work), each with a version that grows by one on every publication, so a
//! reader can tell that something changed and wait for it.
//!
//! Boundary: [`channel`] makes the pair; the writer `publish`es or `update`s; readers
//! `get` a [`Snapshot`] or `wait_newer` than one they have. A reader is what a thread is
//! handed at start for another thread's state, and so what a unit test fakes with a
//! writer of its own.

use std::ops::Deref;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A value as published, with its version (1 for the initial value).
#[derive(Debug)]
pub struct Snapshot<T> {
    pub version: u64,
    value: Arc<T>,
}

impl<T> Clone for Snapshot<T> {
    fn clone(&self) -> Self {
        Snapshot { version: self.version, value: self.value.clone() }
    }
}

impl<T> Deref for Snapshot<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

struct Shared<T> {
    current: Mutex<Snapshot<T>>,
    changed: Condvar,
}

impl<T> Shared<T> {
    fn current(&self) -> MutexGuard<'_, Snapshot<T>> {
        // A panic while the lock was held cannot leave a half-written value: the writer
        // only swaps in a whole new Arc.
        self.current.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The only writer of a value (not `Clone`).
pub struct Writer<T> {
    shared: Arc<Shared<T>>,
}

/// A reader of a value: cheap to clone, never blocks the writer for long.
pub struct Reader<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Clone for Reader<T> {
    fn clone(&self) -> Self {
        Reader { shared: self.shared.clone() }
    }
}

/// A value's writer and a first reader.
pub fn channel<T>(initial: T) -> (Writer<T>, Reader<T>) {
    let shared = Arc::new(Shared {
        current: Mutex::new(Snapshot { version: 1, value: Arc::new(initial) }),
        changed: Condvar::new(),
    });
    (Writer { shared: shared.clone() }, Reader { shared })
}

impl<T> Writer<T> {
    /// Publishes `value` as the next version; returns that version.
    pub fn publish(&self, value: T) -> u64 {
        let mut current = self.shared.current();
        *current = Snapshot { version: current.version + 1, value: Arc::new(value) };
        self.shared.changed.notify_all();
        current.version
    }

    /// What this writer last published.
    pub fn get(&self) -> Snapshot<T> {
        self.shared.current().clone()
    }

    pub fn reader(&self) -> Reader<T> {
        Reader { shared: self.shared.clone() }
    }
}

impl<T: PartialEq> Writer<T> {
    /// Publishes `value` only if it differs from the value in force (readers waiting for
    /// a change are not woken by a repeat); returns whether it did.
    pub fn set(&self, value: T) -> bool {
        let mut current = self.shared.current();
        if value == *current.value {
            return false;
        }
        *current = Snapshot { version: current.version + 1, value: Arc::new(value) };
        self.shared.changed.notify_all();
        true
    }
}

impl<T: Clone + PartialEq> Writer<T> {
    /// `set` of the value as `change` leaves it.
    pub fn update(&self, change: impl FnOnce(&mut T)) -> bool {
        let mut value = T::clone(&self.get());
        change(&mut value);
        self.set(value)
    }
}

impl<T> Reader<T> {
    pub fn get(&self) -> Snapshot<T> {
        self.shared.current().clone()
    }

    /// The first snapshot newer than `version`, or None after `timeout`.
    pub fn wait_newer(&self, version: u64, timeout: Duration) -> Option<Snapshot<T>> {
        let deadline = Instant::now() + timeout;
        let mut current = self.shared.current();
        while current.version <= version {
            let left = deadline.checked_duration_since(Instant::now())?;
            current = self.shared.changed.wait_timeout(current, left).unwrap_or_else(|p| p.into_inner()).0;
        }
        Some(current.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_see_every_publication_as_a_new_version() {
        let (writer, reader) = channel(String::from("a"));
        let first = reader.get();
        assert_eq!((first.version, first.as_str()), (1, "a"));
        assert_eq!(writer.publish("b".into()), 2);
        let second = reader.clone().get();
        assert_eq!((second.version, second.as_str()), (2, "b"));
        // A snapshot taken earlier is not changed under its holder.
        assert_eq!(first.as_str(), "a");
    }

    #[test]
    fn an_update_that_changes_nothing_is_not_a_new_version() {
        let (writer, reader) = channel(vec![1]);
        assert!(!writer.update(|v| v[0] = 1));
        assert_eq!(reader.get().version, 1);
        assert!(writer.update(|v| v.push(2)));
        assert_eq!((reader.get().version, reader.get().len()), (2, 2));
    }

    #[test]
    fn a_reader_waits_for_the_next_version_or_times_out() {
        let (writer, reader) = channel(0u32);
        assert!(reader.wait_newer(1, Duration::from_millis(20)).is_none());
        let waiter = std::thread::spawn(move || reader.wait_newer(1, Duration::from_secs(30)).map(|s| (s.version, *s)));
        std::thread::sleep(Duration::from_millis(20));
        writer.publish(7);
        assert_eq!(waiter.join().unwrap(), Some((2, 7)));
    }

    #[test]
    fn a_panicking_writer_leaves_the_last_whole_value() {
        let (writer, reader) = channel(1u32);
        let writer = Arc::new(Mutex::new(writer));
        let w = writer.clone();
        let _ = std::thread::spawn(move || {
            let w = w.lock().unwrap();
            w.update(|_| panic!("a bug in the writer"));
        })
        .join();
        assert_eq!(*reader.get(), 1);
    }
}
