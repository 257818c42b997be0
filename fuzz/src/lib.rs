//! Helpers shared by Plinth's fuzz targets (`fuzz_targets/`): building `.plinth` bytes from
//! arbitrary tar entries, and a runtime for the async host functions.

pub mod gzip_tar;
pub mod runtime;
