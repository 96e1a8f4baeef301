//! Where evidence comes from: bundles and archives ([`bundle`]) in meshtrace's layout, an
//! `istioctl bug-report`'s or a must-gather's (which file is what: [`layouts`]), log files and
//! standard input ([`input`]), the needle search of large files ([`scan`]), the time-ordered
//! merge of many logs ([`merge`]) and of the time-ordered runs of one ([`runs`]), and loading
//! all of it into the evidence model ([`load`]), with the access-log formats a bundle's own
//! objects define ([`meshformats`]). Resource documents are parsed within a memory budget
//! ([`meshtrace_analysis::document`]); every size limit is in [`limits`].

pub mod bundle;
pub mod input;
pub mod layouts;
pub mod limits;
pub mod load;
pub mod merge;
pub mod meshformats;
pub mod runs;
pub mod scan;

/// How an error message continues on a line of its own: a line break, then two spaces
/// (`report::error` keeps these as lines and escapes every other line break).
pub const CONTINUATION: &str = "\n  ";

/// Append `note` to an error message on a line of its own (`\n  note: …`). The note comes
/// from the evidence (a file name, a reader's remark): its own line breaks are escaped, so it
/// cannot start a line of its own.
pub fn push_note(message: &mut String, note: &str) {
    message.push_str(CONTINUATION);
    message.push_str("note: ");
    message.push_str(&one_line(note));
}

/// `s` with its line breaks escaped (`\n`, `\r`), for a message that must stay one line.
pub fn one_line(s: &str) -> String {
    s.replace('\r', "\\r").replace('\n', "\\n")
}
