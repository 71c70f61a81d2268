#!/usr/bin/env python3
"""PyTorch parity checks for the recurrent suite (optional; needs `torch` and `safetensors`).

  (a) lm-train -> torch: trains a tiny model with `lm-train train`, loads the checkpoint into
      torch.nn.Embedding -> nn.LSTM/GRU/RNN(batch_first) -> nn.Linear with
      load_state_dict(strict=True), and compares the NLL of a text with `lm-train score` and the
      greedy predictions with `lm-train predict`.
  (b) torch -> lm-train: builds random torch models (every cell, with and without an embedding,
      1 and 2 layers), saves them in the rnn-suite/lm/1 format and checks `lm-train score` and
      `lm-train predict` against torch.
  (c) layer level: bidirectional 2-layer stacks with variable lengths (packed sequences) and a
      given initial state, for LSTM, GRU, RNN tanh and relu: `rnn-bench parity` against torch
      pack_padded_sequence.
  (d) CTC: `rnn-bench ctc-parity` loss and gradient with respect to the logits against
      torch.nn.functional.ctc_loss on log_softmax(logits) (blank 0; mean and sum reductions;
      an impossible target with zero_infinity).

Prints the max abs difference of every check and exits 1 when any exceeds the tolerance.

Usage: tools/torch_parity.py [--bin .build/release] [--tolerance 1e-4]
(build first: swift build -c release --product lm-train --product rnn-bench)
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import torch
import torch.nn as nn
from safetensors import safe_open
from safetensors.torch import load_file, save_file

SCORE_DECIMALS = 4  # `lm-train score` prints nll with 4 decimals


class LanguageModel(nn.Module):
    """Embedding (or one-hot) -> recurrent stack -> linear decoder, the checkpoint contract."""

    def __init__(self, cell, layers, hidden, embedding, vocab_size):
        super().__init__()
        self.vocab_size = vocab_size
        self.embedding = nn.Embedding(vocab_size, embedding) if embedding > 0 else None
        inp = embedding if embedding > 0 else vocab_size
        if cell == "lstm":
            self.rnn = nn.LSTM(inp, hidden, layers, batch_first=True)
        elif cell == "gru":
            self.rnn = nn.GRU(inp, hidden, layers, batch_first=True)
        else:
            self.rnn = nn.RNN(inp, hidden, layers, batch_first=True,
                              nonlinearity="relu" if cell == "rnn_relu" else "tanh")
        self.decoder = nn.Linear(hidden, vocab_size)

    def forward(self, ids):  # ids [batch, time] -> logits [batch, time, vocab]
        if self.embedding is not None:
            x = self.embedding(ids)
        else:
            x = nn.functional.one_hot(ids, self.vocab_size).float()
        y, _ = self.rnn(x)
        return self.decoder(y)


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr.strip()}")
    return p.stdout


def torch_from_checkpoint(path):
    with safe_open(path, "pt") as f:
        meta = f.metadata()
    cfg = json.loads(meta["config"])
    vocab = json.loads(meta["vocab"])
    model = LanguageModel(cfg["cell"], cfg["layers"], cfg["hidden"], cfg.get("embedding", 0), cfg["vocab_size"])
    model.load_state_dict(load_file(path), strict=True)
    model.eval()
    return model, vocab


def torch_nll_and_greedy(model, vocab, text):
    index = {t: i for i, t in enumerate(vocab)}
    ids = torch.tensor([[index[c] for c in text]])
    with torch.no_grad():
        logits = model(ids)
    nll = nn.functional.cross_entropy(logits[0, :-1].double(), ids[0, 1:]).item()
    greedy = "".join(vocab[i] for i in logits[0].argmax(-1).tolist())
    return nll, greedy


def parse_score(out):
    m = re.search(r"nll=([0-9.eE+-]+)", out)
    if not m:
        sys.exit(f"unexpected score output: {out!r}")
    return float(m.group(1))


class Report:
    def __init__(self, tolerance):
        self.tolerance = tolerance
        self.failed = False

    def check(self, name, diff, tolerance=None):
        tol = self.tolerance if tolerance is None else tolerance
        ok = diff <= tol
        self.failed |= not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name}: max abs diff {diff:.3e} (tolerance {tol:.0e})")

    def equal(self, name, a, b):
        ok = a == b
        self.failed |= not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {'identical' if ok else f'{a!r} != {b!r}'}")


def check_lm_train_to_torch(args, report, tmp):
    text = ("the quick brown fox jumps over the lazy dog. " * 6).strip()
    data = os.path.join(tmp, "corpus.txt")
    with open(data, "w") as f:
        f.write(text)
    for cell, emb in [("lstm", 8), ("gru", 0), ("rnn", 6)]:
        out = os.path.join(tmp, f"run-{cell}")
        run([args.lm_train, "train", "--data", data, "--cell", cell, "--layers", "2", "--hidden", "16",
             "--embedding", str(emb), "--batch", "4", "--seq-len", "16", "--steps", "30", "--lr", "0.01",
             "--val-fraction", "0", "--out", out])
        ckpt = os.path.join(out, "last.safetensors")
        model, vocab = torch_from_checkpoint(ckpt)
        sample = "the lazy fox jumps over the quick brown dog."
        score_file = os.path.join(tmp, "score.txt")
        with open(score_file, "w") as f:
            f.write(sample)
        swift_nll = parse_score(run([args.lm_train, "score", "--checkpoint", ckpt, "--data", score_file]))
        nll, greedy = torch_nll_and_greedy(model, vocab, sample)
        report.check(f"(a) lm-train {cell} emb {emb} -> torch: score nll", abs(swift_nll - nll),
                     args.tolerance + 0.5 * 10 ** -SCORE_DECIMALS)
        swift_greedy = run([args.lm_train, "predict", "--checkpoint", ckpt, "--text", sample]).rstrip("\n")
        report.equal(f"(a) lm-train {cell} emb {emb} -> torch: greedy predictions", swift_greedy, greedy)


def check_torch_to_lm_train(args, report, tmp):
    torch.manual_seed(0)
    vocab = list(" abcdefghij.")
    text = ("a bad cafe. " + "hide a big jade egg. " * 3).strip()
    for cell in ["lstm", "gru", "rnn_tanh", "rnn_relu"]:
        for layers, emb in [(1, 0), (2, 5)]:
            model = LanguageModel(cell, layers, 7, emb, len(vocab))
            with torch.no_grad():  # larger weights than the default, so outputs are far from uniform
                for p in model.parameters():
                    p.mul_(2.0)
            model.eval()
            cfg = {"cell": cell, "layers": layers, "hidden": 7, "embedding": emb, "vocab_size": len(vocab),
                   "level": "char", "dropout": 0}
            meta = {"format": "rnn-suite/lm/1", "config": json.dumps(cfg), "vocab": json.dumps(vocab)}
            path = os.path.join(tmp, f"torch-{cell}-{layers}.safetensors")
            save_file({k: v.contiguous() for k, v in model.state_dict().items()}, path, metadata=meta)
            score_file = os.path.join(tmp, "text.txt")
            with open(score_file, "w") as f:
                f.write(text)
            swift_nll = parse_score(run([args.lm_train, "score", "--checkpoint", path, "--data", score_file]))
            nll, greedy = torch_nll_and_greedy(model, vocab, text)
            report.check(f"(b) torch {cell} L{layers} emb {emb} -> lm-train: score nll", abs(swift_nll - nll),
                         args.tolerance + 0.5 * 10 ** -SCORE_DECIMALS)
            swift_greedy = run([args.lm_train, "predict", "--checkpoint", path, "--text", text]).rstrip("\n")
            report.equal(f"(b) torch {cell} L{layers} emb {emb} -> lm-train: greedy predictions", swift_greedy, greedy)


def check_layers(args, report, tmp):
    torch.manual_seed(1)
    B, T, I, H, L = 4, 7, 5, 6, 2
    lengths = torch.tensor([7, 3, 5, 1])
    for cell in ["lstm", "gru", "rnn_tanh", "rnn_relu"]:
        if cell == "lstm":
            rnn = nn.LSTM(I, H, L, batch_first=True, bidirectional=True)
        elif cell == "gru":
            rnn = nn.GRU(I, H, L, batch_first=True, bidirectional=True)
        else:
            rnn = nn.RNN(I, H, L, batch_first=True, bidirectional=True,
                         nonlinearity="relu" if cell == "rnn_relu" else "tanh")
        rnn.eval()
        x = torch.randn(B, T, I)
        for t in range(T):  # padded steps hold garbage that must not leak into anything
            x[lengths <= t, t] = 1e3
        h0 = torch.randn(2 * L, B, H) * 0.5
        c0 = torch.randn(2 * L, B, H) * 0.5
        tensors = {k: v.contiguous() for k, v in rnn.state_dict().items()}
        tensors.update({"input": x, "lengths": lengths.float(), "h0": h0})
        if cell == "lstm":
            tensors["c0"] = c0
        inp = os.path.join(tmp, f"parity-{cell}.safetensors")
        outp = os.path.join(tmp, f"parity-{cell}-out.safetensors")
        save_file(tensors, inp, metadata={"cell": cell, "layers": str(L), "hidden": str(H), "bidirectional": "true"})
        run([args.rnn_bench, "parity", "--input", inp, "--output", outp])
        got = load_file(outp)
        with torch.no_grad():
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            y, state = rnn(packed, (h0, c0) if cell == "lstm" else h0)
            y, _ = nn.utils.rnn.pad_packed_sequence(y, batch_first=True, total_length=T)
        report.check(f"(c) {cell} 2-layer bidirectional packed: output", (got["output"] - y).abs().max().item())
        h_n = state[0] if cell == "lstm" else state
        report.check(f"(c) {cell} 2-layer bidirectional packed: h_n", (got["h_n"] - h_n).abs().max().item())
        if cell == "lstm":
            report.check(f"(c) {cell} 2-layer bidirectional packed: c_n", (got["c_n"] - state[1]).abs().max().item())


def check_ctc(args, report, tmp):
    torch.manual_seed(2)
    B, T, C = 4, 9, 5
    input_lengths = torch.tensor([9, 7, 9, 3])
    # Row 2 repeats a label (needs a blank between); row 3 cannot fit 1,1,2,2 into 3 frames.
    targets = torch.tensor([[1, 2, 3, 0], [4, 4, 0, 0], [2, 2, 1, 3], [1, 1, 2, 2]])
    target_lengths = torch.tensor([3, 2, 4, 4])
    for reduction, zero_inf in [("mean", True), ("sum", True)]:
        logits = torch.randn(B, T, C, dtype=torch.float64, requires_grad=True)
        loss = nn.functional.ctc_loss(logits.log_softmax(-1).transpose(0, 1), targets, input_lengths, target_lengths,
                                      blank=0, reduction=reduction, zero_infinity=zero_inf)
        loss.backward()
        inp = os.path.join(tmp, f"ctc-{reduction}.safetensors")
        outp = os.path.join(tmp, f"ctc-{reduction}-out.safetensors")
        save_file({"logits": logits.detach().float(), "input_lengths": input_lengths.float(),
                   "targets": targets.float(), "target_lengths": target_lengths.float()}, inp,
                  metadata={"reduction": reduction, "zero_infinity": "true" if zero_inf else "false"})
        run([args.rnn_bench, "ctc-parity", "--input", inp, "--output", outp])
        got = load_file(outp)
        report.check(f"(d) CTC {reduction} reduction, zero_infinity: loss", abs(got["loss"].item() - loss.item()))
        report.check(f"(d) CTC {reduction} reduction, zero_infinity: d loss / d logits",
                     (got["grad"].double() - logits.grad).abs().max().item())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=".build/release", help="folder holding lm-train and rnn-bench")
    ap.add_argument("--tolerance", type=float, default=1e-4)
    args = ap.parse_args()
    args.lm_train = os.path.join(args.bin, "lm-train")
    args.rnn_bench = os.path.join(args.bin, "rnn-bench")
    for exe in (args.lm_train, args.rnn_bench):
        if not os.access(exe, os.X_OK):
            sys.exit(f"{exe}: not built (swift build -c release --product lm-train --product rnn-bench)")
    torch.set_num_threads(1)
    report = Report(args.tolerance)
    with tempfile.TemporaryDirectory() as tmp:
        check_lm_train_to_torch(args, report, tmp)
        check_torch_to_lm_train(args, report, tmp)
        check_layers(args, report, tmp)
        check_ctc(args, report, tmp)
    print("all checks within tolerance" if not report.failed else "SOME CHECKS FAILED")
    sys.exit(1 if report.failed else 0)


if __name__ == "__main__":
    main()
