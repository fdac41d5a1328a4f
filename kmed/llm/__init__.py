"""Generators (extractive default, Hugging Face, OpenAI-compatible) and the LoRA/compression pipeline."""
