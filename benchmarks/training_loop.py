"""Benchmark: course_lib.fit against a hand-written loop and a DataLoader loop (COURSE_DESIGN
budget).

The budget: `fit` within 5% of a hand-written loop over in-memory tensors, and well ahead of a
DataLoader loop on the course's small data. Run with `make bench` or
`python benchmarks/training_loop.py [--repeats N] [--json FILE]`.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

import course_lib as cl

NUM_EPOCHS, BATCH_SIZE, LR = 10, 64, 1e-3


def _model() -> torch.nn.Module:
    cl.seed_everything(0)
    return cl.MLP([40, 256, 256, 10])


def course_fit(X: torch.Tensor, y: torch.Tensor) -> None:
    model = _model()
    cl.fit(model, X, y, loss_fn=F.cross_entropy, optimizer=torch.optim.Adam(model.parameters(), LR),
           num_epochs=NUM_EPOCHS, batch_size=BATCH_SIZE)


def hand_written(X: torch.Tensor, y: torch.Tensor) -> None:
    model = _model()
    optimizer = torch.optim.Adam(model.parameters(), LR)
    for _ in range(NUM_EPOCHS):
        order = torch.randperm(len(X))
        for start in range(0, len(X), BATCH_SIZE):
            idx = order[start : start + BATCH_SIZE]
            loss = F.cross_entropy(model(X[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


def data_loader(X: torch.Tensor, y: torch.Tensor) -> None:
    model = _model()
    optimizer = torch.optim.Adam(model.parameters(), LR)
    loader = DataLoader(TensorDataset(X, y), batch_size=BATCH_SIZE, shuffle=True)
    for _ in range(NUM_EPOCHS):
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, default=Path("artifacts/bench_training.json"))
    parser.add_argument("--markdown", type=Path, default=Path("benchmarks/training_loop.md"),
                        help="the table the performance page includes")
    args = parser.parse_args()
    data = cl.load_mnist1d()
    X, y = data.X_train, data.y_train
    loops = {"course_lib.fit": course_fit, "hand-written": hand_written, "DataLoader": data_loader}
    times: dict[str, list[float]] = {name: [] for name in loops}
    for _ in range(args.repeats):  # interleaved, so that machine noise hits every loop alike
        for name, loop in loops.items():
            start = time.perf_counter()
            loop(X, y)
            times[name].append(time.perf_counter() - start)
    median = {name: statistics.median(t) for name, t in times.items()}
    base = median["hand-written"]
    print(
        f"MNIST-1D MLP 40-256-256-10, {NUM_EPOCHS} epochs, batch {BATCH_SIZE}, median of "
        f"{args.repeats}:"
    )
    for name, seconds in median.items():
        print(f"  {name:15s} {seconds:6.2f} s  ({seconds / base:5.2f} x hand-written)")
    rows = "\n".join(
        f"| {name} | {seconds:.2f} | {seconds / base:.2f} |" for name, seconds in median.items()
    )
    args.markdown.write_text(
        f"MNIST-1D, MLP 40-256-256-10, {NUM_EPOCHS} epochs of batches of {BATCH_SIZE}, Adam; "
        f"median of "
        f"{args.repeats} interleaved runs, one CPU thread.\n\n| loop | seconds | relative to "
        f"hand-written |\n"
        f"|---|---:|---:|\n{rows}\n"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"median_seconds": median, "ratio_to_hand_written":
                                     {k: v / base for k, v in median.items()}}, indent=1) + "\n")


if __name__ == "__main__":
    main()
