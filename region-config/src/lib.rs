//! Region configuration for Ludus (not yet written).
