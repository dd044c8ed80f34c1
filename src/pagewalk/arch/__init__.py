"""Linux architecture code (arm64 only)."""
