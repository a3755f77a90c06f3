"""RRIEF: structured facts from free-text radiology reports, with rules or local LoRA-tuned LLMs."""

__version__ = "0.1.0"
