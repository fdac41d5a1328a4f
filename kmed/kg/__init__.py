"""Term dictionary, entity linker and knowledge graph built from the curated KB."""
