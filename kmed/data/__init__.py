"""Data: the curated KB (load, validate) and users' AI Hub downloads (load, clean, split, mix)."""
