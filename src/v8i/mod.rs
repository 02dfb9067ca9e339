//! Lossless reader and writer for 1C:Enterprise base lists (`*.v8i`).
