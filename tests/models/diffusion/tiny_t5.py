"""A tiny random T5 encoder and word-level tokenizer in a local folder, for tests (nothing is downloaded).

The committed folder ``data/tiny_t5`` was written by :func:`build_tiny_t5` and is what the reference
parity fixtures were made with; :func:`build_tiny_t5` rebuilds it deterministically (fixed seed).
"""

from __future__ import annotations

from pathlib import Path

WORDS = ["<pad>", "</s>", "<unk>", "a", "dog", "barks", "slow", "piano", "amen", "break", "174", "bpm",
         "chill", "hip", "hop", "beat", "with", "drums", "and", "bass", "in", "the", "rain", "loud"]
D_MODEL = 32
DATA = Path(__file__).parent / "data"
TINY_T5 = DATA / "tiny_t5"


def build_tiny_t5(folder: str | Path, seed: int = 0) -> Path:
    """Write a T5-style tokenizer (lower-cased words, ``</s>`` appended, like T5's) and a random
    1-layer ``T5EncoderModel`` (d_model 32) to ``folder``."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, T5Config, T5EncoderModel

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>",
                            unk_token="<unk>").save_pretrained(folder)
    torch.manual_seed(seed)
    config = T5Config(vocab_size=len(WORDS), d_model=D_MODEL, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
                      decoder_start_token_id=0, relative_attention_num_buckets=8,
                      relative_attention_max_distance=16)
    model = T5EncoderModel(config)
    with torch.no_grad():  # larger than T5's own init, so that outputs are not all near zero
        for p in model.parameters():
            p.copy_(torch.randn(p.shape) * 0.5)
    model.save_pretrained(folder)
    return folder


if __name__ == "__main__":  # python tests/models/diffusion/tiny_t5.py
    print(build_tiny_t5(TINY_T5))
