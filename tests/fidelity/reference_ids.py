"""The original ProX inference's prompt ids, rebuilt with its own pins (run in .venv-fidelity: transformers 4.39.1).

Not product code and not imported by it: `make fidelity-venv` builds the venv, test_prompt_fidelity.py runs this
script there. It follows ProX's data_gen/tasks/apply_{doc,chunk}_refining.py and vLLM 0.4.0's encode step:
- doc: the slow tokenizer (use_fast=False) renders the chat template and encodes it, truncation to 2,000 ids;
- chunk: the fast tokenizer AutoTokenizer converts from tokenizer.model counts line costs (BOS included), packs
  lines into chunks of <= 1,500, renders the template to text, and vLLM encodes that text with BOS added.

    python reference_ids.py TOKENIZER_DIR IN.jsonl OUT.jsonl      # lines {"id", "text"} -> {"id", "doc", "chunks"}
"""
import json
import sys

import transformers
from transformers import AutoTokenizer, LlamaTokenizerFast

SYSTEM = "You are a helpful, respectful and honest assistant."


def messages(user):
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def pack_lines(text, tokenizer, max_token=1500):
    chunks, current, used = [], [], 0
    for index, line in enumerate(text.split("\n")):
        numbered = f"[{index:03d}]{line}"
        cost = len(tokenizer.encode(numbered))
        if used + cost <= max_token:
            current.append((index, numbered))
            used += cost
            continue
        if current:
            chunks.append(current)
        current, used = [(index, numbered)], cost
        if cost > max_token:
            chunks.append(current)
            current, used = [], 0
    if current:
        chunks.append(current)
    return chunks


def main(tokenizer_dir, source, target):
    assert transformers.__version__ == "4.39.1", transformers.__version__
    slow = AutoTokenizer.from_pretrained(tokenizer_dir, use_fast=False)
    fast = AutoTokenizer.from_pretrained(tokenizer_dir)
    assert not isinstance(slow, LlamaTokenizerFast) and isinstance(fast, LlamaTokenizerFast)
    with open(source, encoding="utf-8") as inputs, open(target, "w", encoding="utf-8") as out:
        for line in inputs:
            doc = json.loads(line)
            text = doc["text"]
            doc_ids = slow.apply_chat_template(messages(text), add_generation_prompt=True, truncation=True,
                                               max_length=2000)
            chunks = []
            for chunk in ([] if text == "" else pack_lines(text, fast)):
                user = "[doc]\n" + "\n".join(numbered for _, numbered in chunk) + "\n[/doc]"
                prompt = fast.apply_chat_template(messages(user), add_generation_prompt=True, tokenize=False)
                chunks.append({"first_line": chunk[0][0], "last_line": chunk[-1][0], "ids": fast.encode(prompt)})
            out.write(json.dumps({"id": doc["id"], "doc": doc_ids, "chunks": chunks}) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
