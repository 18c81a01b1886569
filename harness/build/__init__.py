"""The kernel-build stage: source, patch, configure, compile, cache."""
