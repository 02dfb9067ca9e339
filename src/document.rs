//! document (being built).
