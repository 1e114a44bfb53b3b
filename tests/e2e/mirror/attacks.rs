//! What the upstream (or whoever controls it) can do to the mirror: each is never served,
//! shows its reason in `/status` and `/metrics`, and leaves the last good commit served.
