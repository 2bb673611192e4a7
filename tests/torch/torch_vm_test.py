#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""kiln_torch in the VM: every registered op forward and backward against the CPU,
the fallback, device errors, memory statistics, streams, and the two samples.

Importing torch takes about a minute under TCG, so all of it runs in one process.
The output is googletest's, so scripts/run-tests' vm tier reads it like its other
suites (one result per test; --gtest_filter as in googletest).
"""
import fnmatch
import importlib.util
import os
import sys
import time
import traceback
import warnings

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TESTS = []
# Imported in main(), once tests are selected: a run that selects none (the vm tier's
# unprivileged pass) then costs no minute of importing torch.
torch = F = kiln_torch = DEV = GEN = None


def test(fn):
    TESTS.append(("Torch." + fn.__name__, fn))
    return fn


def randn(*shape):
    return torch.randn(shape, generator=GEN)


def close(got, want, what, atol=1e-4, rtol=1e-4):
    got = got.cpu()
    assert got.shape == want.shape, f"{what}: shape {tuple(got.shape)}, expected {tuple(want.shape)}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype}, expected {want.dtype}"
    if not torch.allclose(got, want, atol=atol, rtol=rtol):
        err = (got - want).abs().max().item()
        raise AssertionError(f"{what}: largest difference {err:.3e} (atol {atol}, rtol {rtol})")


def check(fn, *inputs, ops, grad=True, atol=1e-4, rtol=1e-4):
    """fn(*inputs) on the CPU and on Kiln (same values); outputs and, with grad, the
    gradients of every floating-point input must agree, every op in `ops` must have
    run on the device and nothing may have fallen back to the CPU."""
    cpu = [t.clone().requires_grad_(grad and t.is_floating_point()) for t in inputs]
    dev = [t.detach().to(DEV).requires_grad_(grad and t.is_floating_point()) for t in inputs]
    kiln_torch.reset_counts()
    want, got = fn(*cpu), fn(*dev)
    close(got, want.detach(), "forward", atol, rtol)
    if grad:
        g = randn(*want.shape)  # a 0-dim loss too
        want.backward(g)
        got.backward(g.to(DEV))
        for i, (c, d) in enumerate(zip(cpu, dev)):
            if c.requires_grad:
                close(d.grad, c.grad, f"gradient of input {i}", atol, rtol)
    kiln_torch.synchronize()
    fallbacks = kiln_torch.fallback_counts()
    assert not fallbacks, f"fell back to the CPU: {fallbacks}"
    ran = kiln_torch.op_counts()
    missing = [op for op in ops if op not in ran]
    assert not missing, f"did not run on the device: {missing} (ran: {sorted(ran)})"


# ---- matrix products ------------------------------------------------------------------

@test
def mm_transposed_and_sliced_operands():
    check(lambda a, b: a @ b, randn(7, 5), randn(5, 9), ops=["aten::mm"])
    check(lambda a, b: a.t() @ b, randn(5, 7), randn(5, 9), ops=["aten::mm"])
    check(lambda a, b: a @ b.t(), randn(7, 5), randn(9, 5), ops=["aten::mm"])
    check(lambda a, b: a[:, 1:4] @ b[2:5], randn(6, 6), randn(8, 3), ops=["aten::mm"])


@test
def linear_and_addmm():
    check(lambda x, w, b: F.linear(x, w, b), randn(16, 12), randn(10, 12), randn(10),
          ops=["aten::addmm", "aten::mm", "aten::sum"])
    check(lambda c, a, b: torch.addmm(c, a, b, beta=0.5, alpha=2.0), randn(4, 3), randn(4, 6), randn(6, 3),
          ops=["aten::addmm"])


@test
def bmm_and_matmul():
    check(lambda a, b: torch.bmm(a, b), randn(3, 4, 5), randn(3, 5, 2), ops=["aten::bmm"])
    check(lambda a: torch.bmm(a, a.transpose(1, 2)), randn(2, 4, 6), ops=["aten::bmm"])


# ---- element-wise ---------------------------------------------------------------------

@test
def arithmetic_with_broadcasting():
    check(lambda a, b: a + b, randn(4, 5), randn(5), ops=["aten::add"])
    check(lambda a, b: a - b, randn(4, 1), randn(1, 5), ops=["aten::sub"])
    check(lambda a, b: a * b, randn(3, 4, 5), randn(4, 1), ops=["aten::mul"])
    check(lambda a, b: a / b, randn(6, 3), randn(6, 3).abs() + 0.5, ops=["aten::div"])
    check(lambda a, b: torch.add(a, b, alpha=-2.5), randn(8), randn(8), ops=["aten::add"])
    check(lambda a, b: a.t() * b, randn(5, 4), randn(4, 5), ops=["aten::mul"])


@test
def arithmetic_with_scalars():
    check(lambda a: a * 3 + 1, randn(5, 6), ops=["aten::mul", "aten::add"])
    check(lambda a: 1 - a / 4, randn(7), ops=["aten::div", "aten::sub"])
    check(lambda a: 2 / (a.abs() + 1), randn(9), ops=["aten::reciprocal", "aten::abs"])  # rtruediv


@test
def in_place_arithmetic():
    def fn(a, b):
        c = a * 1
        c.add_(b, alpha=0.5).mul_(2).sub_(b[0]).div_(3)
        return c
    check(fn, randn(4, 6), randn(4, 6), ops=["aten::add_", "aten::mul_", "aten::sub_", "aten::div_"])


@test
def activations_and_backward():
    for f, op in [(torch.relu, "aten::relu"), (torch.sigmoid, "aten::sigmoid"), (torch.tanh, "aten::tanh"),
                  (F.gelu, "aten::gelu")]:
        check(f, randn(9, 7), ops=[op])
    check(lambda x: F.gelu(x.t()), randn(5, 3), ops=["aten::gelu", "aten::gelu_backward"])
    check(lambda x: F.relu(x), randn(4, 4), ops=["aten::threshold_backward"])
    check(lambda x: torch.sigmoid(x), randn(4, 4), ops=["aten::sigmoid_backward"])
    check(lambda x: torch.tanh(x), randn(4, 4), ops=["aten::tanh_backward"])
    check(lambda x: torch.exp(x) + torch.sqrt(x.abs() + 1) + torch.log(x.abs() + 1) - x.neg(), randn(6),
          ops=["aten::exp", "aten::sqrt", "aten::log", "aten::neg"])


# ---- softmax, losses, reductions -----------------------------------------------------

@test
def softmax_and_log_softmax():
    check(lambda x: torch.softmax(x, dim=-1), randn(6, 10), ops=["aten::_softmax", "aten::_softmax_backward_data"])
    check(lambda x: torch.log_softmax(x, dim=1), randn(5, 7),
          ops=["aten::_log_softmax", "aten::_log_softmax_backward_data"])
    check(lambda x: torch.softmax(x.t(), dim=-1), randn(8, 3), ops=["aten::_softmax"])


@test
def cross_entropy_and_nll():
    target = torch.randint(0, 5, (12,), generator=GEN)
    check(lambda x, t: F.cross_entropy(x, t), randn(12, 5), target,
          ops=["aten::nll_loss_forward", "aten::nll_loss_backward"])
    check(lambda x, t: F.cross_entropy(x, t, reduction="sum"), randn(12, 5), target, ops=["aten::nll_loss_forward"])
    masked = target.clone()
    masked[::3] = -100
    check(lambda x, t: F.cross_entropy(x, t), randn(12, 5), masked, ops=["aten::nll_loss_forward"])
    check(lambda x, t: F.nll_loss(torch.log_softmax(x, 1), t, reduction="none"), randn(12, 5), target,
          ops=["aten::nll_loss_forward"])


@test
def sum_and_mean():
    check(lambda x: x.sum(), randn(5, 6), ops=["aten::sum"])
    check(lambda x: x.sum(dim=0), randn(5, 6), ops=["aten::sum"])
    check(lambda x: x.mean(dim=(0, 2), keepdim=True), randn(3, 4, 5), ops=["aten::mean"])
    check(lambda x: x.t().mean(), randn(7, 3), ops=["aten::mean"])


# ---- embeddings -----------------------------------------------------------------------

@test
def embedding_and_backward():
    idx = torch.randint(0, 20, (4, 6), generator=GEN)
    check(lambda w, i: F.embedding(i, w), randn(20, 8), idx,
          ops=["aten::index_select", "aten::embedding_dense_backward"])


@test
def embedding_bag_sum_and_mean():
    idx = torch.randint(0, 30, (17,), generator=GEN)
    offsets = torch.tensor([0, 3, 3, 9, 12])
    for mode in ["sum", "mean"]:
        check(lambda w, i, o: F.embedding_bag(i, w, o, mode=mode), randn(30, 6), idx, offsets,
              ops=["aten::_embedding_bag", "aten::_embedding_bag_dense_backward"])
    last = torch.tensor([0, 5, 17])
    check(lambda w, i, o: F.embedding_bag(i, w, o, mode="sum", include_last_offset=True), randn(30, 6), idx, last,
          ops=["aten::_embedding_bag"])


# ---- layout, fill ---------------------------------------------------------------------

@test
def views_transpose_contiguous_cat():
    check(lambda x: x.t().contiguous() * 1, randn(5, 7), ops=["kiln_strided_copy"])
    check(lambda x: x[:, 1:4].permute(1, 0).reshape(-1) + 0, randn(6, 5), ops=["kiln_strided_copy"])
    check(lambda x, y: torch.cat([x, y.t()], dim=1), randn(4, 3), randn(2, 4), ops=["aten::cat"])
    check(lambda x: x.unsqueeze(0).expand(3, 4, 5).contiguous() * 1, randn(4, 5), ops=["kiln_strided_copy"])


@test
def fill_and_zero():
    x = torch.empty(5, 6, device=DEV)
    x.fill_(2.5)
    close(x, torch.full((5, 6), 2.5), "fill_")
    x[:, 1].zero_()
    want = torch.full((5, 6), 2.5)
    want[:, 1] = 0
    close(x, want, "zero_ of a column")
    close(torch.zeros(3, 3, device=DEV), torch.zeros(3, 3), "zeros")
    close(torch.ones(4, dtype=torch.long, device=DEV), torch.ones(4, dtype=torch.long), "ones int64")
    assert not kiln_torch.fallback_counts(), kiln_torch.fallback_counts()


# ---- optimizers -----------------------------------------------------------------------

def optimizer_run(make_opt, device):
    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).to(device)
    opt = make_opt(model.parameters())
    x, y = torch.randn(10, 6).to(device), torch.randint(0, 3, (10,)).to(device)
    for _ in range(3):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return [p.detach().cpu() for p in model.parameters()]


@test
def sgd_and_adam_steps():
    for name, make in [("SGD", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-3)),
                       ("Adam", lambda p: torch.optim.Adam(p, lr=0.01))]:
        want = optimizer_run(make, "cpu")
        kiln_torch.reset_counts()
        got = optimizer_run(make, DEV)
        for i, (g, w) in enumerate(zip(got, want)):
            close(g, w, f"{name}: parameter {i} after 3 steps", atol=1e-5)
        assert not kiln_torch.fallback_counts(), f"{name}: {kiln_torch.fallback_counts()}"


# ---- fallback, errors, memory, streams ------------------------------------------------

@test
def unsupported_op_falls_back_with_one_warning():
    x = randn(6, 4)
    kiln_torch.reset_counts()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        got = [torch.cumsum(x.to(DEV), dim=0).cpu() for _ in range(3)]
    for g in got:
        close(g, torch.cumsum(x, dim=0), "cumsum through the fallback")
    said = [str(m.message) for m in w if "aten::cumsum" in str(m.message)]
    assert len(said) <= 1, f"warned {len(said)} times"
    assert kiln_torch.fallback_counts().get("aten::cumsum.out", 0) + \
        kiln_torch.fallback_counts().get("aten::cumsum", 0) == 3, kiln_torch.fallback_counts()


@test
def device_fault_raises_with_the_sdk_message():
    table = torch.randn(10, 4).to(DEV)
    bad = torch.tensor([1, 2, 1000]).to(DEV)       # row 1000 of 10: the gather faults
    try:
        F.embedding(bad, table).cpu()
    except RuntimeError as e:
        msg = str(e)
        assert "kiln_index_select_rows" in msg and "KERNEL_TRAP" in msg, msg
    else:
        raise AssertionError("no exception for an out-of-range index")
    # the queue keeps working afterwards
    close(torch.ones(3).to(DEV) * 2, torch.full((3,), 2.0), "after the fault")


@test
def memory_statistics():
    kiln_torch.synchronize()
    base = kiln_torch.memory_allocated()
    x = torch.empty(1 << 18, device=DEV)           # 1 MiB
    assert kiln_torch.memory_allocated() - base >= 1 << 20, kiln_torch.memory_stats()
    assert kiln_torch.max_memory_allocated() >= kiln_torch.memory_allocated()
    reserved = kiln_torch.memory_reserved()
    del x
    assert kiln_torch.memory_allocated() == base, kiln_torch.memory_stats()
    assert kiln_torch.memory_reserved() == reserved, "a freed block stays cached"
    y = torch.empty(1 << 18, device=DEV)
    assert kiln_torch.memory_reserved() == reserved, "the cached block is reused"
    del y
    kiln_torch.empty_cache()
    assert kiln_torch.memory_reserved() < reserved


@test
def streams_and_synchronize():
    s = kiln_torch.new_stream()
    kiln_torch.set_stream(s)
    try:
        x = randn(32, 32)
        got = (x.to(DEV) @ x.to(DEV)).cpu()
        assert kiln_torch.current_stream() == s
    finally:
        kiln_torch.set_stream(0)
    close(got, x @ x, "matmul on a second stream")
    kiln_torch.synchronize()
    st = kiln_torch.device_stats()
    assert st["submissions"] > 0 and st["device_time_ns"] > 0, st


# ---- the samples ----------------------------------------------------------------------

def run_sample(name, argv):
    path = os.path.join(REPO, "samples", "pytorch", name + ".py")
    spec = importlib.util.spec_from_file_location("sample_" + name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rc = mod.main(argv)
    assert rc == 0, f"{name} exited with status {rc}"


@test
def sample_mlp_train():
    run_sample("mlp_train", ["--steps", "30"])


@test
def sample_dlrm_infer():
    run_sample("dlrm_infer", ["--batches", "2"])


# ---- googletest-style driver ----------------------------------------------------------

def selected(name, flt):
    pos, _, neg = flt.partition("-")
    pos = pos or "*"
    return (any(fnmatch.fnmatchcase(name, p) for p in pos.split(":") if p)
            and not any(fnmatch.fnmatchcase(name, p) for p in neg.split(":") if p))


def main(argv):
    flt = next((a.split("=", 1)[1] for a in argv if a.startswith("--gtest_filter=")), "*")
    tests = [(n, f) for n, f in TESTS if selected(n, flt)]
    print(f"[==========] Running {len(tests)} tests from kiln_torch", flush=True)
    if tests:
        global torch, F, kiln_torch, DEV, GEN
        import torch
        import torch.nn.functional as F
        import kiln_torch
        DEV = kiln_torch.device()
        GEN = torch.Generator().manual_seed(1234)
        print(f"[----------] torch {torch.__version__} on {DEV}", flush=True)
    failed = []
    for name, fn in tests:
        print(f"[ RUN      ] {name}", flush=True)
        t0 = time.monotonic()
        try:
            fn()
            ok = True
        except Exception:
            traceback.print_exc(file=sys.stdout)
            ok = False
        ms = int((time.monotonic() - t0) * 1000)
        print(f"[{'       OK ' if ok else '  FAILED  '}] {name} ({ms} ms)", flush=True)
        if not ok:
            failed.append(name)
    print(f"[  PASSED  ] {len(tests) - len(failed)} tests.")
    for name in failed:
        print(f"[  FAILED  ] {name}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
