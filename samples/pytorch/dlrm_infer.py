#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""DLRM-style recommendation inference on a Kiln device, checked against the CPU.

Dense features go through a bottom MLP; each sparse feature is a bag of ids looked up
in its own embedding table (nn.EmbeddingBag, sum or mean); the dense vector and the
pooled embeddings interact through their pairwise dot products (bmm); a top MLP and a
sigmoid give the click probability. Prints the modelled device time per batch and PASS.

    scripts/kiln-vm run -- python3 samples/pytorch/dlrm_infer.py
"""
import argparse
import sys
import time

import torch

import kiln_torch


def mlp(sizes):
    layers = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1])


class DLRM(torch.nn.Module):
    def __init__(self, dense_in, dim, table_rows, modes):
        super().__init__()
        self.bottom = torch.nn.Sequential(mlp([dense_in, 64, dim]), torch.nn.ReLU())
        self.tables = torch.nn.ModuleList(torch.nn.EmbeddingBag(rows, dim, mode=mode)
                                          for rows, mode in zip(table_rows, modes))
        features = 1 + len(table_rows)
        self.top = mlp([dim + features * features, 64, 32, 1])

    def forward(self, dense, sparse):
        d = self.bottom(dense)
        pooled = [table(idx, offs) for table, (idx, offs) in zip(self.tables, sparse)]
        z = torch.stack([d] + pooled, dim=1)                  # [batch, features, dim]
        inter = torch.bmm(z, z.transpose(1, 2)).flatten(1)    # pairwise dot products
        return torch.sigmoid(self.top(torch.cat([d, inter], dim=1))).squeeze(1)


def make_batch(batch, dense_in, table_rows, gen):
    dense = torch.randn(batch, dense_in, generator=gen)
    sparse = []
    for rows in table_rows:
        lengths = torch.randint(1, 6, (batch,), generator=gen)
        offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)[:-1]])
        ids = torch.randint(0, rows, (int(lengths.sum()),), generator=gen)
        sparse.append((ids, offsets))
    return dense, sparse


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--dim", type=int, default=16)
    args = ap.parse_args(argv)
    if not kiln_torch.is_available():
        print("dlrm_infer: no Kiln device:\n" + kiln_torch.diagnose(), file=sys.stderr)
        return 1
    dev = kiln_torch.device()
    dense_in, table_rows, modes = 13, [1000, 500, 200], ["sum", "mean", "sum"]
    torch.manual_seed(0)
    model = DLRM(dense_in, args.dim, table_rows, modes).eval()
    kiln_model = DLRM(dense_in, args.dim, table_rows, modes).eval()
    kiln_model.load_state_dict(model.state_dict())
    kiln_model.to(dev)
    gen = torch.Generator().manual_seed(1)

    print(f"DLRM: bottom MLP {dense_in}-64-{args.dim}, {len(table_rows)} embedding bags {table_rows} x {args.dim}, "
          f"dot interaction, top MLP; batch {args.batch} on {dev} (Kiln) and on the CPU")
    print(f"{'batch':>6} {'max |kiln - cpu|':>17} {'device us':>10} {'launches':>9} {'wall ms':>8}")
    kiln_torch.reset_counts()
    worst, per_batch = 0.0, []
    with torch.no_grad():
        for b in range(args.batches):
            dense, sparse = make_batch(args.batch, dense_in, table_rows, gen)
            want = model(dense, sparse)
            kiln_torch.synchronize()
            before, t0 = kiln_torch.device_stats(), time.monotonic()
            got = kiln_model(dense.to(dev), [(i.to(dev), o.to(dev)) for i, o in sparse]).cpu()
            kiln_torch.synchronize()
            after = kiln_torch.device_stats()
            us = (after["device_time_ns"] - before["device_time_ns"]) / 1e3
            per_batch.append(us)
            diff = (got - want).abs().max().item()
            worst = max(worst, diff)
            print(f"{b + 1:>6} {diff:>17.2e} {us:>10.1f} {after['submissions'] - before['submissions']:>9} "
                  f"{(time.monotonic() - t0) * 1e3:>8.0f}")
    fallbacks = kiln_torch.fallback_counts()
    print(f"modelled device time per batch: {sum(per_batch) / len(per_batch):.1f} us "
          f"({args.batch / (sum(per_batch) / len(per_batch)) * 1e6:,.0f} samples/s modelled)")
    print(f"ops on the device: {sum(kiln_torch.op_counts().values())}; CPU fallbacks: "
          f"{sum(fallbacks.values())} {dict(fallbacks) or ''}")
    ok = worst < 1e-4
    print(f"largest difference from the CPU: {worst:.2e}")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
