// Shared helpers for tests: fixture paths, .npy loading, tolerance comparisons.
