//! Strict, incremental HTTP/1.1 request parser (filled by issue 2).
