pub mod record;
pub mod verdict;
