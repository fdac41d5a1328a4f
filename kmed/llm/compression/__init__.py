"""Make a causal LM small and fast, stage by stage, re-scoring after each (``kmed compress``).

    recipe.py    typed stages read from configs/compress/*.yaml
    pipeline.py  runs the stages, gates each one, writes the output folder atomically
    distill.py   KD losses (forward/reverse/skew KL, CE), student init, LoRA recovery
    prune.py     structured (heads, MLP channels, layers) and unstructured pruning
    quantize.py  int4/int8 (CPU) and bitsandbytes (GPU); save and meta-skeleton load
    qlinear.py   the quantized layers; prefill.py: the int4 prompt path
    evaluate.py  perplexity, grounded QA, speed; measure.py: one checkpoint in a fresh process
    report.py    report.md + report.png; ckpt.py: streamed safetensors, atomic folders
    synth.py     random checkpoints at a real shape (kmed bench llm); teacher.py: a KB-trained teacher
"""
