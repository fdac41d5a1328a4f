"""LoRA supervised fine-tuning on grounded QA (``kmed train lora``): ``data`` makes and tokenizes
records, ``lora`` is the recipe."""
