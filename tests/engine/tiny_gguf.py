"""A tiny random-weight llama-architecture model in GGUF, written here so the engine tests need nothing
beside the repository. About 470 KB: byte-fallback tokenizer plus a handful of words, 2 blocks of width 64.
The weights are random, so the text it writes is gibberish; the tests only need a real server answering.

    .venv/bin/python -m tests.engine.tiny_gguf /tmp/tiny.gguf
"""

from __future__ import annotations

import sys
from pathlib import Path

import gguf
import numpy as np

CONTEXT = 512
WIDTH = 64
BLOCKS = 2
HEADS = 4
FEED_FORWARD = 128
WORDS = ("▁hello", "▁world", "▁the", "▁model", "▁is", "▁loaded", "▁ok", ".")
SEED = 0  # the same bytes on every run, so a failing test can be replayed


def _vocabulary() -> tuple[list[str], list[float], list[gguf.TokenType]]:
    specials = [("<unk>", gguf.TokenType.UNKNOWN), ("<s>", gguf.TokenType.CONTROL), ("</s>", gguf.TokenType.CONTROL)]
    byte_tokens = [(f"<0x{value:02X}>", gguf.TokenType.BYTE) for value in range(256)]
    entries = specials + byte_tokens
    tokens = [text for text, _ in entries] + list(WORDS)
    scores = [0.0] * len(entries) + [-1.0] * len(WORDS)
    types = [kind for _, kind in entries] + [gguf.TokenType.NORMAL] * len(WORDS)
    return tokens, scores, types


def write_tiny_model(path: Path) -> Path:
    tokens, scores, types = _vocabulary()
    rng = np.random.default_rng(SEED)
    writer = gguf.GGUFWriter(str(path), "llama")

    def random(name: str, *shape: int) -> None:
        writer.add_tensor(name, (rng.standard_normal(shape) * 0.02).astype(np.float32))

    def ones(name: str) -> None:
        writer.add_tensor(name, np.ones(WIDTH, np.float32))

    writer.add_name("tiny-test-llama")
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(WIDTH)
    writer.add_block_count(BLOCKS)
    writer.add_feed_forward_length(FEED_FORWARD)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(HEADS)
    writer.add_rope_dimension_count(WIDTH // HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    # A plain template: llama.cpp's server refuses chat requests to a model without one.
    writer.add_chat_template("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}assistant:")

    random("token_embd.weight", len(tokens), WIDTH)
    for block in range(BLOCKS):
        prefix = f"blk.{block}"
        ones(f"{prefix}.attn_norm.weight")
        for part in ("attn_q", "attn_k", "attn_v", "attn_output"):
            random(f"{prefix}.{part}.weight", WIDTH, WIDTH)
        ones(f"{prefix}.ffn_norm.weight")
        random(f"{prefix}.ffn_gate.weight", FEED_FORWARD, WIDTH)
        random(f"{prefix}.ffn_up.weight", FEED_FORWARD, WIDTH)
        random(f"{prefix}.ffn_down.weight", WIDTH, FEED_FORWARD)
    ones("output_norm.weight")
    random("output.weight", len(tokens), WIDTH)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


if __name__ == "__main__":
    print("wrote", write_tiny_model(Path(sys.argv[1] if len(sys.argv) > 1 else "tiny.gguf")))
