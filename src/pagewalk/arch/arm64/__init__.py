"""Linux's arm64 code: `asm/` (what generic mm includes) and `mm/` (what builds on it)."""
