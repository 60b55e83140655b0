// Wired into the service next (the update thread).
#[allow(dead_code)]
pub mod record;
#[allow(dead_code)]
pub mod verdict;
