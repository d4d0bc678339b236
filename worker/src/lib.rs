//! One worker process (filled by issue 4).
