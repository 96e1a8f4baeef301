//! Where evidence comes from: bundles and archives ([`bundle`]), log files and standard input
//! ([`input`]), the needle search of large files ([`scan`]), the time-ordered merge of many logs
//! ([`merge`]) and loading all of it into the evidence model ([`load`]).

pub mod bundle;
pub mod input;
pub mod load;
pub mod merge;
pub mod scan;
