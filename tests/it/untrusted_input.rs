//! Untrusted input: bounded memory, time and disk on hostile bundles, archives and logs.
