//! The settings registry (filled by issue 3).
