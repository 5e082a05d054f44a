"""Write a small word-level tokenizer that ``transformers.AutoTokenizer`` loads from a
folder, so ``vllm bench serve --tokenizer DIR`` runs without a model hub. Runs in the vLLM
venv (``tokenizers`` and ``transformers`` are vLLM dependencies): ``python toy_tokenizer.py DIR``."""

from __future__ import annotations

import json
import sys

from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

WORDS = [f"w{i}" for i in range(1000)]


def main() -> None:
    out = sys.argv[1]
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{w: i + 3 for i, w in enumerate(WORDS)}}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    fast.save_pretrained(out)
    print(json.dumps({"dir": out, "vocab": len(vocab)}))


if __name__ == "__main__":
    main()
