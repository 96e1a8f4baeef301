//! Live parity: explain and proxy-config live, live trace citing the same configuration as offline.
