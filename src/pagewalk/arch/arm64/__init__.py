"""arm64: geometry, descriptors, hardware translation, kernel layout, ptdump format."""
