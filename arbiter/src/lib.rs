//! The master process (filled by issue 5).
