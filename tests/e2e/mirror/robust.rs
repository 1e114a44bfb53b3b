//! The mirror under stress: kills and restarts, clients fetching while the branch moves, a
//! second client implementation.
