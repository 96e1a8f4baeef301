//! Untrusted output: no control character, Markdown break-out, shell injection or secret reaches what meshtrace prints.
