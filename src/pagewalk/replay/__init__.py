"""Replaying what real kernels did: walker callback traces and pageattr traces."""
