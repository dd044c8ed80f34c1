"""Hardware: the Arm architecture, independent of any operating system."""
