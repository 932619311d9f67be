"""The explorer page: one user's view of the whole running stack (see README.md)."""
