"""Architecture support (arm64 only)."""
