//! Where evidence comes from: bundles and archives ([`bundle`]) in meshtrace's layout, an
//! `istioctl bug-report`'s or a must-gather's (which file is what: [`layouts`]), log files and
//! standard input ([`input`]), the needle search of large files ([`scan`]), the time-ordered
//! merge of many logs ([`merge`]) and of the time-ordered runs of one ([`runs`]), and loading
//! all of it into the evidence model ([`load`]), with the access-log formats a bundle's own
//! objects define ([`meshformats`]). Resource documents are parsed within a memory budget
//! ([`document`]); every size limit is in [`limits`].

pub mod bundle;
pub mod document;
pub mod input;
pub mod layouts;
pub mod limits;
pub mod load;
pub mod merge;
pub mod meshformats;
pub mod runs;
pub mod scan;
