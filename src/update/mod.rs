pub mod cli;
pub mod rauc;
pub mod version;
