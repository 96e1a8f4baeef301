//! Untrusted lines: every line reader bounded in line length and memory; junk rejected cheaply; stdin streamed.
