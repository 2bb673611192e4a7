#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Train an MLP with autograd and Adam on a Kiln device; check it against the CPU.

The same model (same initial weights, same data) is trained on the CPU and on Kiln.
The losses must agree step by step to fp32 rounding and both must learn the task.
Prints the modelled device time of every step (docs/profiling.md) and PASS.

    scripts/kiln-vm run -- python3 samples/pytorch/mlp_train.py
"""
import argparse
import math
import sys
import time

import torch
import torch.nn.functional as F

import kiln_torch


def make_data(n, classes, gen):
    """Points on `classes` interleaved spiral arms in 2-D."""
    label = torch.arange(n) % classes
    r = torch.rand(n, generator=gen) * 0.9 + 0.1
    angle = label.float() * (2 * math.pi / classes) + r * 2.5 + torch.randn(n, generator=gen) * 0.15
    x = torch.stack([r * torch.cos(angle), r * torch.sin(angle)], dim=1)
    return x, label


class MLP(torch.nn.Module):
    def __init__(self, sizes):
        super().__init__()
        self.layers = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))

    def forward(self, x):
        for layer in self.layers[:-1]:
            x = F.relu(layer(x))
        return self.layers[-1](x)


def train(model, x, y, steps, lr, on_step=None):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for step in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if on_step:
            on_step(step, losses[-1])
    with torch.no_grad():
        acc = (model(x).cpu().argmax(dim=1) == y.cpu()).float().mean().item()
    return losses, acc


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--classes", type=int, default=4)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--lr", type=float, default=0.02)
    args = ap.parse_args(argv)
    if not kiln_torch.is_available():
        print("mlp_train: no Kiln device:\n" + kiln_torch.diagnose(), file=sys.stderr)
        return 1
    dev = kiln_torch.device()
    gen = torch.Generator().manual_seed(0)
    x, y = make_data(args.samples, args.classes, gen)
    torch.manual_seed(1)
    cpu_model = MLP([2, args.hidden, args.hidden, args.classes])
    kiln_model = MLP([2, args.hidden, args.hidden, args.classes])
    kiln_model.load_state_dict(cpu_model.state_dict())
    kiln_model.to(dev)

    cpu_losses, cpu_acc = train(cpu_model, x, y, args.steps, args.lr)

    print(f"MLP 2-{args.hidden}-{args.hidden}-{args.classes}, {args.samples} samples, Adam lr {args.lr}, "
          f"on {dev} (Kiln) and on the CPU")
    print(f"{'step':>6} {'loss kiln':>10} {'loss cpu':>10} {'device us':>10} {'launches':>9} {'wall ms':>8}")
    kiln_torch.reset_counts()
    kiln_torch.synchronize()
    last = dict(kiln_torch.device_stats(), wall=time.monotonic())
    per_step = []

    def report(step, loss):
        kiln_torch.synchronize()
        now = dict(kiln_torch.device_stats(), wall=time.monotonic())
        us = (now["device_time_ns"] - last["device_time_ns"]) / 1e3
        per_step.append(us)
        if step < 3 or (step + 1) % 10 == 0:
            print(f"{step + 1:>6} {loss:>10.4f} {cpu_losses[step]:>10.4f} {us:>10.1f} "
                  f"{now['submissions'] - last['submissions']:>9} {(now['wall'] - last['wall']) * 1e3:>8.0f}")
        last.update(now)

    xd, yd = x.to(dev), y.to(dev)
    kiln_losses, kiln_acc = train(kiln_model, xd, yd, args.steps, args.lr, report)

    fallbacks = kiln_torch.fallback_counts()
    on_device = sum(kiln_torch.op_counts().values())
    worst = max(abs(a - b) for a, b in zip(kiln_losses, cpu_losses))
    print(f"modelled device time per step: {sum(per_step) / len(per_step):.1f} us "
          f"(median {sorted(per_step)[len(per_step) // 2]:.1f} us)")
    print(f"ops on the device: {on_device}; CPU fallbacks: {sum(fallbacks.values())} {dict(fallbacks) or ''}")
    print(f"final loss: kiln {kiln_losses[-1]:.4f}, cpu {cpu_losses[-1]:.4f}; largest difference "
          f"over {args.steps} steps {worst:.2e}")
    print(f"accuracy: kiln {kiln_acc * 100:.1f} %, cpu {cpu_acc * 100:.1f} %")
    # Adam normalises each update, so rounding differences grow slowly over the steps;
    # the two runs must stay close and both must have learnt the task.
    ok = (worst < 2e-2 and abs(kiln_acc - cpu_acc) <= 0.03 and kiln_acc >= 0.8
          and kiln_losses[-1] < 0.5 * kiln_losses[0])
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
