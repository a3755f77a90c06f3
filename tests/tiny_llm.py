"""Build a tiny Llama base model (random weights) and a locally trained BPE tokenizer.

No model download is possible in tests, so this makes a stand-in for a local base model
directory (``config.json``, ``model.safetensors``, tokenizer files) that every LLM test, the
server tests and ``bench/llm_batching.py`` can load exactly like a real one. The tokenizer is a
byte-level BPE trained on the prompts, report texts and label JSON it will see, so it can spell
every enum value and all JSON punctuation (byte-level: it can spell anything).
"""

from __future__ import annotations

import json
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
TRAIN_CXR = FIXTURES / "llm_train_cxr.jsonl"
# Fixed corpus files (not a glob): the tokenizer, and so every prompt length, stays reproducible.
CORPUS_FILES = (TRAIN_CXR,)

# A minimal chat template in the style of real ones (it includes BOS itself).
CHAT_TEMPLATE = (
    "<s>{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def tiny_train_config():
    """Hyperparameters with which a LoRA on the tiny model memorises the 20 CXR reports."""
    from extractors.llm.training import TrainConfig

    return TrainConfig(
        r=16, alpha=32, dropout=0.0, lr=5e-3, epochs=20, batch_size=2, scheduler="linear",
        seed=0, train_lm_head_for_tests=True, device="cpu", eval_exact_match=False,
    )  # fmt: skip


def _corpus() -> list[str]:
    """Text the tokenizer learns from: prompts for every schema, reports, labels, enum values."""
    from extractors.llm.prompts import BASE_MODEL_FORMAT, build_messages, render_prompt
    from extractors.schemas import available_schemas

    texts: list[str] = []
    for spec in available_schemas().values():
        for fmt in (None, BASE_MODEL_FORMAT):  # the adapters' compact prompt and the full one
            messages = build_messages(spec, "FINDINGS: none.", *([fmt] if fmt else []))
            texts.append(render_prompt(None, messages))
        texts.append(spec.canonical_json(spec.empty_labels()))
        for f in spec.fields:
            texts.extend(json.dumps(v) for v in spec.allowed_values(f) or [])
            texts.append(json.dumps(f.name))
            texts.extend(json.dumps(k) for k in spec.keys_for(f) or [])
    for path in CORPUS_FILES:
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            if isinstance(row.get("text"), str):
                texts.append(row["text"])
            if isinstance(row.get("labels"), dict):
                texts.append(json.dumps(row["labels"], separators=(",", ":")))
    return texts


def build_tokenizer(vocab_size: int = 2000, chat_template: bool = True):
    """A byte-level BPE ``PreTrainedTokenizerFast`` with ``<s>``, ``</s>``, ``<pad>``.

    Merges may cross word boundaries (no regex pre-split, tokens up to 32 characters): the
    fixed instruction and the label JSON compress to few tokens, which keeps test sequences
    short, and the constrained decoder is exercised with tokens that span several JSON
    elements (e.g. ``":"not_mentioned","E``).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
        max_token_length=32,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    if chat_template:
        fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_llama(
    out_dir: str | Path,
    *,
    chat_template: bool = True,
    hidden_size: int = 64,
    layers: int = 2,
    heads: int = 4,
    sliding_window: int | None = 64,
    seed: int = 0,
) -> Path:
    """Write a random-weight tiny Llama-family model and its tokenizer to ``out_dir``.

    With ``sliding_window`` (default) the architecture is Mistral's, i.e. Llama with local
    attention: a random model attends almost uniformly, so with full attention the short report
    drowns in the long fixed instruction and a LoRA needs hundreds of epochs to learn to read it;
    a 64-token window puts report and answer side by side and 20 epochs suffice. Pass
    ``sliding_window=None`` for a plain ``LlamaForCausalLM``. Weights use a 1/sqrt(hidden)
    initialisation so the random layers pass signal on (the default 0.02 nearly zeroes it).
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(chat_template=chat_template)
    torch.manual_seed(seed)
    config_class, model_class = (
        (MistralConfig, MistralForCausalLM) if sliding_window else (LlamaConfig, LlamaForCausalLM)
    )
    extra = {"sliding_window": sliding_window} if sliding_window else {}
    config = config_class(
        **extra,
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=max(1, heads // 2),
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        initializer_range=hidden_size**-0.5,
    )
    model = model_class(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


if __name__ == "__main__":  # pragma: no cover - manual helper
    import sys

    print(build_tiny_llama(sys.argv[1] if len(sys.argv) > 1 else "/tmp/tiny-llama"))
