//! Shipping: static binary, container image definition, in-cluster manifests, must-gather mode, krew manifest.
