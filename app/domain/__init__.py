"""One package per service domain."""
