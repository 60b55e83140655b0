//! The live preview: a small JPEG of what the camera sends, taken about once a second
//! while someone looks.
//!
//! Invariant: the branch's valve (the first element after the producer's `tee`) is open
//! only while a viewer asked within `IDLE_AFTER`; closed, it drops each raw frame before
//! anything is rate-limited, queued, scaled or encoded, so nobody looking costs one
//! buffer reference per frame. Nothing in the branch can block the encoder's side.
//! API boundary: one `Preview` lives as long as the process; the web calls `frame`, the
//! producer `attach` and `deliver`, the supervisor `tick` and `unavailable`.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;

/// The valve closes when nobody asked for a picture for this long.
pub const IDLE_AFTER: Duration = Duration::from_secs(5);
/// How long `frame` waits for a fresh picture after waking the branch.
pub const WAIT: Duration = Duration::from_secs(2);
/// A picture this old is not shown: the branch takes one a second while it is open.
const FRESH_FOR: Duration = Duration::from_millis(1500);

/// Why there is no picture, in words for the page and the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailable {
    /// `[web] preview = false`.
    Disabled,
    /// The camera encodes H.264 itself: there are no raw frames to take a picture from.
    CameraEncodes,
    /// Named elements of the branch are not installed.
    Missing(String),
    /// The branch could not be built; the stream runs without it.
    Failed(String),
    /// No producer pipeline runs (no enabled destination, or waiting for a network).
    NotStreaming,
    /// The branch is open but no picture came within `WAIT`.
    NoPicture,
}

impl Unavailable {
    pub fn reason(&self) -> String {
        match self {
            Unavailable::Disabled => "the live preview is switched off ([web] preview = false)".into(),
            Unavailable::CameraEncodes => {
                "the camera sends H.264 itself, so there are no raw frames to take a preview from".into()
            }
            Unavailable::Missing(what) => format!("the preview needs the GStreamer element {what}, not installed"),
            Unavailable::Failed(why) => format!("the preview could not be set up: {why}"),
            Unavailable::NotStreaming => {
                "nothing is being streamed (no enabled destination, or waiting for a network)".into()
            }
            Unavailable::NoPicture => format!("no picture came from the camera within {} s", WAIT.as_secs()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Frame {
    pub jpeg: Arc<[u8]>,
    pub taken: Instant,
}

#[derive(Default)]
pub struct Preview {
    state: Mutex<State>,
    arrived: Condvar,
}

struct State {
    branch: Result<Branch, Unavailable>,
    /// Counts attachments, so that a torn-down producer's last picture is not taken.
    generation: u64,
    asked: Option<Instant>,
    latest: Option<Frame>,
}

impl Default for State {
    fn default() -> Self {
        State { branch: Err(Unavailable::NotStreaming), generation: 0, asked: None, latest: None }
    }
}

struct Branch {
    valve: gst::Element,
    open: bool,
}

impl Branch {
    fn set_open(&mut self, open: bool) {
        if self.open != open {
            self.valve.set_property("drop", !open);
            self.open = open;
        }
    }
}

/// Whether the branch should run: somebody asked within `IDLE_AFTER`.
fn wanted(asked: Option<Instant>, now: Instant) -> bool {
    asked.is_some_and(|t| now.saturating_duration_since(t) < IDLE_AFTER)
}

fn fresh(frame: &Frame, now: Instant) -> bool {
    now.saturating_duration_since(frame.taken) < FRESH_FOR
}

impl Preview {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("preview lock")
    }

    /// A new producer's branch, ending at `valve`; returns the generation its pictures
    /// are delivered with.
    pub fn attach(&self, valve: gst::Element, now: Instant) -> u64 {
        let mut state = self.lock();
        let mut branch = Branch { valve, open: false };
        branch.valve.set_property("drop", true);
        branch.set_open(wanted(state.asked, now));
        state.branch = Ok(branch);
        state.generation += 1;
        state.latest = None;
        state.generation
    }

    /// No branch runs (any more), for this reason.
    pub fn unavailable(&self, why: Unavailable) {
        let mut state = self.lock();
        if state.branch.as_ref().err() != Some(&why) {
            tracing::info!("preview: {}", why.reason());
        }
        state.branch = Err(why);
        state.generation += 1;
        state.latest = None;
        self.arrived.notify_all();
    }

    /// A picture from the branch of `generation`.
    pub fn deliver(&self, generation: u64, jpeg: &[u8], now: Instant) {
        let mut state = self.lock();
        if state.generation == generation {
            state.latest = Some(Frame { jpeg: jpeg.into(), taken: now });
            self.arrived.notify_all();
        }
    }

    /// Closes the valve once nobody asked for `IDLE_AFTER`.
    pub fn tick(&self, now: Instant) {
        let mut state = self.lock();
        let want = wanted(state.asked, now);
        if let Ok(branch) = state.branch.as_mut() {
            branch.set_open(want);
        }
    }

    /// Notes that a viewer asked now and returns a picture taken within the last
    /// moment, waiting up to `wait` for one after opening the valve.
    pub fn frame(&self, wait: Duration) -> Result<Frame, Unavailable> {
        let asked = Instant::now();
        let deadline = asked + wait;
        let mut state = self.lock();
        state.asked = Some(asked);
        loop {
            let now = Instant::now();
            match state.branch.as_mut() {
                Err(why) => return Err(why.clone()),
                Ok(branch) => branch.set_open(true),
            }
            if let Some(frame) = state.latest.as_ref().filter(|f| fresh(f, now)) {
                return Ok(frame.clone());
            }
            if now >= deadline {
                return Err(Unavailable::NoPicture);
            }
            state = self.arrived.wait_timeout(state, deadline - now).expect("preview lock").0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valve() -> gst::Element {
        gst::init().unwrap();
        gst::ElementFactory::make("valve").build().unwrap()
    }

    #[test]
    fn wanted_only_while_someone_asked_lately() {
        let t = Instant::now();
        assert!(!wanted(None, t));
        assert!(wanted(Some(t), t + Duration::from_secs(4)));
        assert!(!wanted(Some(t), t + IDLE_AFTER));
    }

    #[test]
    fn the_valve_opens_when_asked_and_closes_when_nobody_looks() {
        let preview = Preview::default();
        let valve = valve();
        let now = Instant::now();
        let generation = preview.attach(valve.clone(), now);
        assert!(valve.property::<bool>("drop"), "closed until somebody asks");
        assert_eq!(preview.frame(Duration::from_millis(50)).unwrap_err(), Unavailable::NoPicture);
        assert!(!valve.property::<bool>("drop"), "asking opened it");
        preview.deliver(generation, b"\xff\xd8jpeg", Instant::now());
        assert_eq!(&*preview.frame(Duration::ZERO).unwrap().jpeg, b"\xff\xd8jpeg");
        preview.tick(Instant::now() + Duration::from_secs(1));
        assert!(!valve.property::<bool>("drop"));
        preview.tick(Instant::now() + IDLE_AFTER);
        assert!(valve.property::<bool>("drop"), "nobody looked for IDLE_AFTER");
    }

    #[test]
    fn a_waiting_viewer_gets_the_next_picture_and_old_producers_are_ignored() {
        let preview = Arc::new(Preview::default());
        let old = preview.attach(valve(), Instant::now());
        let current = preview.attach(valve(), Instant::now());
        let waiter = {
            let preview = preview.clone();
            std::thread::spawn(move || preview.frame(Duration::from_secs(5)))
        };
        std::thread::sleep(Duration::from_millis(100));
        preview.deliver(old, b"old", Instant::now());
        preview.deliver(current, b"new", Instant::now());
        assert_eq!(&*waiter.join().unwrap().unwrap().jpeg, b"new");
    }

    #[test]
    fn stale_pictures_and_missing_branches_are_reasons() {
        let preview = Preview::default();
        assert_eq!(preview.frame(Duration::ZERO).unwrap_err(), Unavailable::NotStreaming);
        let generation = preview.attach(valve(), Instant::now());
        preview.deliver(generation, b"x", Instant::now() - FRESH_FOR);
        assert_eq!(preview.frame(Duration::ZERO).unwrap_err(), Unavailable::NoPicture);
        preview.unavailable(Unavailable::CameraEncodes);
        let why = preview.frame(Duration::ZERO).unwrap_err();
        assert!(why.reason().contains("sends H.264 itself"), "{why:?}");
    }
}
