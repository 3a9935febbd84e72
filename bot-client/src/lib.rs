//! Bot clients for Ludus (not yet written).
