//! Updates: where bundles come from (hawkBit DDI or a manifest) and how they arrive.

pub mod ddi;
pub mod download;
pub mod http;
pub mod manifest;
// Wired into the service next (the update thread).
#[allow(dead_code)]
pub mod record;
pub mod source;
#[allow(dead_code)]
pub mod verdict;
