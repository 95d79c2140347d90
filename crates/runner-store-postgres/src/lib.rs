//! Not implemented yet: see the open issue that builds this crate.
