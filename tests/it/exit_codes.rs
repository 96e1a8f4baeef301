//! Honest exit codes and clear errors for unusable input and arguments, in every command.
