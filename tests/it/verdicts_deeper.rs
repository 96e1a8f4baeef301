//! Deeper verdicts: the failing RBAC condition, 429 kinds, ready-to-apply fixes, classification of real lines from issue threads.
