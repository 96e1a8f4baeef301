//! Untrusted cluster: every API call and log stream bounded in time and bytes; temporary bundles private and removed.
