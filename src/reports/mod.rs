//! Error reports: the 1C error-registration protocol (`getInfo`, `pushReport`) and the
//! login-failure events thin clients POST after a failed start, taken on the public
//! listeners and kept in the [`crate::store`].

pub mod archive;
