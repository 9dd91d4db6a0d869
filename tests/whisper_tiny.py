"""A tiny random Whisper in the on-disk format faster-whisper loads (a CTranslate2 model directory
with tokenizer.json and preprocessor_config.json), built like a real one: transformers'
WhisperForConditionalGeneration with large-v3's vocabulary layout and 128 mel bands but tiny
dimensions, converted by CTranslate2's own Transformers converter. The tokenizer has Whisper's
multilingual special tokens at their large-v3 ids over a synthetic byte-level vocabulary."""

from __future__ import annotations

import itertools
import json
import string
from pathlib import Path

BASE_VOCAB = 50257  # byte-level BPE tokens of the multilingual tokenizer; specials follow
N_MELS = 128


def _byte_alphabet() -> list[str]:
    """GPT-2's byte → printable character table (what the ByteLevel decoder inverts)."""
    printable = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars, extra = [], 0
    for b in range(256):
        if b in printable:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def special_tokens() -> list[str]:
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    timestamps = [f"<|{i * 0.02:.2f}|>" for i in range(1501)]
    return [
        "<|endoftext|>",
        "<|startoftranscript|>",
        *(f"<|{code}|>" for code in _LANGUAGE_CODES),
        "<|translate|>",
        "<|transcribe|>",
        "<|startoflm|>",
        "<|startofprev|>",
        "<|nospeech|>",
        "<|notimestamps|>",
        *timestamps,
    ]


def build_tokenizer():
    """Byte-level BPE: the 256 byte symbols, made-up words ("Ġaa", "Ġab", …) and the empty token
    up to 50257, then the specials (ids 50257…51865, as in large-v3)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    vocab = {ch: i for i, ch in enumerate(_byte_alphabet())}
    syllables = ("".join(p) for n in itertools.count(2) for p in itertools.product(string.ascii_lowercase, repeat=n))
    while len(vocab) < BASE_VOCAB - 1:
        vocab.setdefault("Ġ" + next(syllables), len(vocab))
    vocab[""] = BASE_VOCAB - 1  # the multilingual vocabulary has an empty token; CTranslate2 detects it by that
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in special_tokens()])
    return tok


def write_model(out_dir: Path, work_dir: Path, seed: int = 0) -> Path:
    """Build, save (transformers) and convert (CTranslate2) a tiny Whisper into `out_dir`."""
    import torch
    from ctranslate2.converters import TransformersConverter
    from transformers import (
        PreTrainedTokenizerFast,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
    )

    tok = build_tokenizer()
    specials = special_tokens()
    ids = {t: BASE_VOCAB + i for i, t in enumerate(specials)}
    langs = {t: ids[t] for t in specials[2:102]}  # <|af|> … <|yue|>
    config = WhisperConfig(
        vocab_size=BASE_VOCAB + len(specials),
        num_mel_bins=N_MELS,
        d_model=64,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
        max_source_positions=1500,
        max_target_positions=448,
        pad_token_id=ids["<|endoftext|>"],
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|endoftext|>"],
        decoder_start_token_id=ids["<|startoftranscript|>"],
    )
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config).eval()
    gen = model.generation_config
    gen.lang_to_id = langs
    gen.suppress_tokens = []
    gen.begin_suppress_tokens = [ids["<|endoftext|>"]]
    gen.alignment_heads = [[1, 0], [1, 1]]
    hf_dir = work_dir / "hf"
    model.save_pretrained(hf_dir)
    PreTrainedTokenizerFast(tokenizer_object=tok).save_pretrained(hf_dir)
    WhisperFeatureExtractor(feature_size=N_MELS).save_pretrained(hf_dir)
    TransformersConverter(str(hf_dir), copy_files=["tokenizer.json", "preprocessor_config.json"]).convert(
        str(out_dir), force=True
    )
    # The converter takes the language ids from generation_config.lang_to_id, which transformers 5
    # drops when it reads the config back; write them as a real large-v3 directory has them.
    ct2_config = json.loads((out_dir / "config.json").read_text())
    if not ct2_config.get("lang_ids"):
        ct2_config["lang_ids"] = sorted(langs.values())
        (out_dir / "config.json").write_text(json.dumps(ct2_config))
    return out_dir
