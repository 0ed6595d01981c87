//! Log template mining: every log line fingerprinted to its template, online.
