"""Property-based fuzzing of every parser at the edge: a clear 4xx or a domain error, never a
crash, never a write."""
