//! Istio ambient: ztunnel connection lines, waypoints, and inference-gateway (ext_proc) failures.
