//! The bridge. (Being built.)
