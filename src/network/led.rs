//! The status LED: which pattern a state shows (pure), and a small thread that blinks a
//! sysfs `leds` directory's `brightness` in software.
//!
//! Software blinking, not the kernel's `timer` trigger: `timer` creates its `delay_on` and
//! `delay_off` files when it is selected, owned by root, so a service that is not root
//! could not change them; `brightness` exists for good and the image grants it to the
//! service's group (tmpfiles, which also sets the trigger to `none` at boot). A double
//! flash is not something `timer` can show either.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use super::Mode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    Off,
    /// The access point waits for a phone.
    SlowBlink,
    /// Getting online.
    FastBlink,
    /// Online: the box streams.
    Steady,
    /// Online, but the uplink holds the bitrate under half of what was set: on, with a
    /// short dip every second.
    Dipping,
    /// The last attempt failed: the access point is back, with a sentence on the page.
    DoubleFlash,
}

/// What the LED shows for a mode (whether the last attempt failed, whether the stream
/// runs on a weak network).
pub fn pattern(mode: Mode, failed: bool, weak: bool) -> Pattern {
    match mode {
        Mode::Online if weak => Pattern::Dipping,
        Mode::Unmanaged => Pattern::Off,
        Mode::AccessPoint if failed => Pattern::DoubleFlash,
        Mode::AccessPoint => Pattern::SlowBlink,
        Mode::Starting | Mode::Scanning | Mode::Connecting => Pattern::FastBlink,
        Mode::Online => Pattern::Steady,
    }
}

impl Pattern {
    /// One period as (on, duration) steps; a single step is held until the pattern changes.
    fn steps(self) -> &'static [(bool, u64)] {
        match self {
            Pattern::Off => &[(false, 0)],
            Pattern::Steady => &[(true, 0)],
            Pattern::Dipping => &[(true, 850), (false, 150)],
            Pattern::SlowBlink => &[(true, 1000), (false, 1000)],
            Pattern::FastBlink => &[(true, 100), (false, 100)],
            Pattern::DoubleFlash => &[(true, 150), (false, 150), (true, 150), (false, 1550)],
        }
    }
}

/// The LED thread's handle; dropping it stops the thread.
pub struct Led {
    patterns: mpsc::Sender<Pattern>,
    current: Pattern,
}

impl Led {
    /// Starts blinking `dir` (a sysfs `leds` directory); `None` when there is no such LED.
    pub fn start(dir: &Path) -> Option<Led> {
        if dir.as_os_str().is_empty() {
            return None;
        }
        let brightness = dir.join("brightness");
        if let Err(why) = std::fs::OpenOptions::new().write(true).open(&brightness) {
            tracing::warn!("status LED: cannot write {}: {why}; no LED", brightness.display());
            return None;
        }
        let (patterns, receiver) = mpsc::channel();
        std::thread::Builder::new()
            .name("led".into())
            .spawn(move || blink(&brightness, &receiver))
            .expect("spawn the LED thread");
        Some(Led { patterns, current: Pattern::Off })
    }

    pub fn show(&mut self, pattern: Pattern) {
        if pattern != self.current {
            self.current = pattern;
            let _ = self.patterns.send(pattern);
        }
    }
}

fn blink(brightness: &PathBuf, patterns: &mpsc::Receiver<Pattern>) {
    let mut pattern = Pattern::Off;
    let mut step = 0;
    let mut failed = false;
    loop {
        let steps = pattern.steps();
        let (on, ms) = steps[step % steps.len()];
        if let Err(why) = std::fs::write(brightness, if on { "1" } else { "0" })
            && !failed
        {
            tracing::warn!("status LED: {}: {why}", brightness.display());
            failed = true;
        }
        let next = if steps.len() == 1 {
            patterns.recv().ok()
        } else {
            match patterns.recv_timeout(Duration::from_millis(ms)) {
                Ok(next) => Some(next),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    step += 1;
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => None,
            }
        };
        match next {
            Some(next) => {
                pattern = next;
                step = 0;
            }
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn each_state_has_its_own_pattern() {
        assert_eq!(pattern(Mode::AccessPoint, false, false), Pattern::SlowBlink);
        assert_eq!(pattern(Mode::AccessPoint, true, false), Pattern::DoubleFlash);
        assert_eq!(pattern(Mode::Connecting, true, false), Pattern::FastBlink);
        assert_eq!(pattern(Mode::Online, false, false), Pattern::Steady);
        assert_eq!(pattern(Mode::Online, false, true), Pattern::Dipping);
        assert_eq!(pattern(Mode::AccessPoint, false, true), Pattern::SlowBlink, "weak means nothing off line");
        assert_eq!(pattern(Mode::Unmanaged, false, false), Pattern::Off);
        let all = [
            Pattern::Off,
            Pattern::SlowBlink,
            Pattern::FastBlink,
            Pattern::Steady,
            Pattern::Dipping,
            Pattern::DoubleFlash,
        ];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a.steps(), b.steps());
            }
        }
    }

    /// Samples `brightness` for `span`, returning the values seen, in order, without repeats.
    fn watch(file: &Path, span: Duration) -> Vec<String> {
        let mut seen: Vec<String> = Vec::new();
        let end = Instant::now() + span;
        while Instant::now() < end {
            let value = std::fs::read_to_string(file).unwrap_or_default();
            if !value.is_empty() && seen.last() != Some(&value) {
                seen.push(value);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        seen
    }

    #[test]
    fn the_writer_blinks_brightness_and_holds_steady() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("brightness");
        std::fs::write(&file, "0").unwrap();
        let mut led = Led::start(dir.path()).expect("a writable brightness file");
        led.show(Pattern::FastBlink);
        let seen = watch(&file, Duration::from_millis(700));
        assert!(seen.len() >= 4, "fast blink toggles every 100 ms: {seen:?}");
        led.show(Pattern::Steady);
        settles_at(&file, "1");
        assert_eq!(watch(&file, Duration::from_millis(400)), ["1"]);
        led.show(Pattern::Off);
        settles_at(&file, "0");
    }

    /// Waits (2 s at most: a loaded machine may hold the writer back) for `value`.
    fn settles_at(file: &Path, value: &str) {
        let end = Instant::now() + Duration::from_secs(2);
        while std::fs::read_to_string(file).unwrap_or_default() != value {
            assert!(Instant::now() < end, "never {value}: {:?}", std::fs::read_to_string(file));
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn no_led_without_a_writable_directory() {
        assert!(Led::start(Path::new("")).is_none());
        assert!(Led::start(Path::new("/nonexistent/leds/ACT")).is_none());
    }
}
