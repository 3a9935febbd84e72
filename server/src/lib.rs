//! Ludus game room server (work in progress).
pub mod entities;
pub mod game;
pub mod simulation;
