"""Data: the curated KB (load, validate), passages, users' AI Hub downloads (load, clean, split, mix) and DUR files (import)."""
