//! Updates: where bundles come from (hawkBit DDI or a manifest) and how they arrive.

pub mod ddi;
pub mod download;
pub mod http;
pub mod manifest;
pub mod source;
