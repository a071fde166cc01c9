"""Write the bundled demo model: a tiny Stable Audio Open-shaped diffusion model, deterministically.

Files (under preencode/demo/):
* tiny_sao.json          the model config (stable-audio-tools' diffusion_cond format, Stable Audio Open's layout:
                         t5 prompt + seconds_start/seconds_total, a DiT, the demo VAE as pretransform)
* tiny_sao.safetensors   its unwrapped weights: model.*, conditioner.*, pretransform.* (as Stable Audio Open's
                         model.safetensors)
* tiny_t5/               a word-level T5 tokenizer over a small English music vocabulary and a random 1-layer
                         T5 encoder (what "t5-base" is for Stable Audio Open), so prompts work offline

All weights are seeded random values (the DiT has the reference's initialisation, the VAE is
the former scripts/make_demo_checkpoint.py's demo autoencoder): the demo shows the pipeline, not audio quality.
Usage: python scripts/make_demo_model.py [out_dir]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

DEMO = Path(__file__).resolve().parents[1] / "preencode" / "demo"
T5_PLACEHOLDER = "preencode/demo/tiny_t5"

# Lower-cased words the demo T5 knows (anything else becomes <unk>); music words first.
VOCABULARY = """
a an the and with of in on at by for to from into over under like as or but no not very more less
music song track tune beat beats loop loops sample samples sound sounds tone tones note notes chord
chords melody melodies harmony rhythm groove riff riffs solo intro outro verse chorus bridge break
drop fill drum drums kick snare hat hats hihat cymbal cymbals clap claps tom toms percussion shaker
tambourine bass bassline sub synth synths pad pads lead arp arpeggio pluck keys piano organ rhodes
guitar guitars acoustic electric strings violin viola cello orchestra orchestral brass trumpet
trombone horn horns saxophone sax flute clarinet choir vocal vocals voice voices bells bell marimba
vibraphone harp sitar genre ambient techno house trance dubstep jungle hip hop trap lofi lo fi jazz
blues rock pop funk soul disco reggae classical cinematic folk country metal punk edm electronic
chillhop chill chillout downtempo breakbeat amen idm experimental minimal industrial warm cold
bright dark soft loud deep low high heavy light smooth rough clean dirty distorted crisp punchy
slow fast calm energetic happy sad dreamy epic gentle aggressive mellow melancholic uplifting tense
eerie peaceful playful hypnotic driving bouncy airy lush sparse dense wide short long little big
major minor hum drone noise static rain wind water birds ocean fire city night morning ringing
sustained fading rising falling swelling pulsing repeating steady bpm 60 70 80 90 100 110 120 124
128 130 140 150 160 170 174 180 one two three four five six seven eight
""".split()  # noqa: SIM905 - a word list reads best as text
SPECIAL = ["<pad>", "</s>", "<unk>", ",", ".", "-"]


def vocabulary() -> list[str]:
    seen: dict[str, None] = {}
    for word in SPECIAL + VOCABULARY:
        seen.setdefault(word, None)
    return list(seen)


def write_t5(folder: Path, seed: int = 0) -> Path:
    """A T5-style tokenizer (lower-cased words and punctuation marks, ``</s>`` appended) and a
    random 1-layer ``T5EncoderModel`` (d_model 32)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, T5Config, T5EncoderModel

    folder.mkdir(parents=True, exist_ok=True)
    words = vocabulary()
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>",
                            unk_token="<unk>").save_pretrained(folder)
    torch.manual_seed(seed)
    config = T5Config(vocab_size=len(words), d_model=32, d_kv=8, d_ff=64, num_layers=1, num_heads=4,
                      decoder_start_token_id=0, relative_attention_num_buckets=8,
                      relative_attention_max_distance=16)  # type: ignore[call-arg]
    model = T5EncoderModel(config)
    with torch.no_grad():  # larger than T5's own initialisation, so that prompts give distinct states
        for p in model.parameters():
            p.copy_(torch.randn(p.shape) * 0.5)
    model.save_pretrained(folder)
    return folder


def vae_state() -> dict[str, torch.Tensor]:
    """The demo autoencoder's weights: Stable Audio Open's VAE structure, 6 base channels, seed 2024."""
    from preencode.models.factory import build_autoencoder

    torch.manual_seed(2024)
    model = build_autoencoder(DEMO / "tiny_vae.json")
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("alpha", "beta")):
                p.normal_(0.0, 0.2)
    return model.state_dict()


def model_config() -> dict:
    """tiny_sao.json: Stable Audio Open 1.0's config with every width scaled down."""
    vae = json.loads((DEMO / "tiny_vae.json").read_text())
    return {
        "model_type": "diffusion_cond",
        "sample_size": 262144,
        "sample_rate": vae["sample_rate"],
        "audio_channels": vae["audio_channels"],
        "model": {
            # scale: the demo VAE's latents of the demo audio have a std of about 0.1 (`preencode inspect
            # demo_output`); dividing by it gives the diffusion model data of std about 1.
            "pretransform": {"type": "autoencoder", "iterate_batch": True, "scale": 0.1, "config": vae["model"]},
            "conditioning": {"configs": [
                {"id": "prompt", "type": "t5", "config": {"t5_model_name": T5_PLACEHOLDER, "max_length": 16}},
                {"id": "seconds_start", "type": "number", "config": {"min_val": 0, "max_val": 512}},
                {"id": "seconds_total", "type": "number", "config": {"min_val": 0, "max_val": 512}},
            ], "cond_dim": 32},
            "diffusion": {
                "cross_attention_cond_ids": ["prompt", "seconds_start", "seconds_total"],
                "global_cond_ids": ["seconds_start", "seconds_total"],
                "type": "dit",
                "config": {"io_channels": vae["model"]["latent_dim"], "embed_dim": 64, "depth": 2, "num_heads": 2,
                           "cond_token_dim": 32, "global_cond_dim": 64, "project_cond_tokens": False,
                           "transformer_type": "continuous_transformer"},
            },
            "io_channels": vae["model"]["latent_dim"],
        },
        "training": {
            "use_ema": True,
            "log_loss_info": False,
            "pre_encoded": True,
            "optimizer_configs": {"diffusion": {
                "optimizer": {"type": "AdamW", "config": {"lr": 1e-3, "betas": [0.9, 0.999], "weight_decay": 1e-3}},
                "scheduler": {"type": "InverseLR", "config": {"inv_gamma": 1000000, "power": 0.5, "warmup": 0.9}},
            }},
        },
    }


def write_demo_model(out: Path) -> list[Path]:
    """Write the model files under ``out``; returns their paths."""
    from safetensors.torch import save_file

    from preencode.models.diffusion import build_diffusion_model

    write_t5(out / "tiny_t5")
    config = model_config()
    (out / "tiny_sao.json").write_text(json.dumps(config, indent=2) + "\n")
    concrete = json.loads(json.dumps(config).replace(json.dumps(T5_PLACEHOLDER), json.dumps(str(out / "tiny_t5"))))
    torch.manual_seed(0)
    model = build_diffusion_model(concrete)
    model.pretransform.model.load_state_dict(vae_state())  # type: ignore[union-attr]
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "tiny_sao.safetensors"))
    return [out / "tiny_sao.json", out / "tiny_sao.safetensors", *sorted((out / "tiny_t5").iterdir())]


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else DEMO
    paths = write_demo_model(out)
    for path in paths:
        print(f"wrote {path} ({path.stat().st_size / 1e3:.1f} kB)")
    print(f"{sum(p.stat().st_size for p in paths) / 1e6:.2f} MB in all")


if __name__ == "__main__":
    main()
