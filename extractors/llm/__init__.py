"""Local LLM extraction: prompts, LoRA training (peft), adapters, the in-process engine, backends.

Importing this package is light; torch, transformers and peft are imported only by the modules
that need them (``engine``, ``training``, ``hf_backend``), so the rules path never pays for them.
"""
