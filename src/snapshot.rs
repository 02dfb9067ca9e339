//! snapshot (being built).
