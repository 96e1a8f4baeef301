//! Support archives as sent: istioctl bug-report and must-gather layouts, bundle-defined access-log formats.
