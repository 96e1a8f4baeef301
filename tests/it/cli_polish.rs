//! CLI polish: completions, man page, colour, help examples, tables that never split a token.
