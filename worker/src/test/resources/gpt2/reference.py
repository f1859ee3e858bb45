#!/usr/bin/env python3
"""Writes expected.tsv: GPT-2's token ids for each text in texts.txt, computed by an independent
transcription of GPT-2's published byte-level BPE algorithm (Python + the `regex` module, as GPT-2 uses).

    python3 reference.py /path/to/gpt2-folder   # holds vocab.json and merges.txt

texts.txt holds one text per line with \\n, \\t, \\r, \\\\ escaped; expected.tsv holds the ids, space-separated.
"""
import json, sys
import regex

def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b); cs.append(256 + n); n += 1
    return dict(zip(bs, map(chr, cs)))

PAT = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")

def main(folder):
    vocab = json.load(open(folder + "/vocab.json", encoding="utf-8"))
    lines = open(folder + "/merges.txt", encoding="utf-8").read().split("\n")[1:]
    ranks = {tuple(l.split()): i for i, l in enumerate(l for l in lines if l)}
    b2u = bytes_to_unicode()

    def bpe(word):
        word = list(word)
        while len(word) > 1:
            pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
            best = min(pairs, key=lambda p: ranks.get(p, float("inf")))
            if best not in ranks:
                break
            out, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1]); i += 2
                else:
                    out.append(word[i]); i += 1
            word = out
        return word

    def encode(text):
        ids = []
        for piece in PAT.findall(text):
            ids += [vocab[t] for t in bpe("".join(b2u[b] for b in piece.encode("utf-8")))]
        return ids

    def unescape(s):
        out, i = [], 0
        while i < len(s):
            if s[i] == "\\" and i + 1 < len(s):
                out.append({"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}[s[i + 1]]); i += 2
            else:
                out.append(s[i]); i += 1
        return "".join(out)

    here = sys.path[0]
    with open(here + "/texts.txt", encoding="utf-8") as f, open(here + "/expected.tsv", "w") as out:
        for line in f.read().split("\n"):
            if line:
                out.write(" ".join(map(str, encode(unescape(line)))) + "\n")

if __name__ == "__main__":
    main(sys.argv[1])
