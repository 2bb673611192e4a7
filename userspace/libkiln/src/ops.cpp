// SPDX-License-Identifier: MIT
// libkiln: op-library wrappers (argument order from docs/pe-isa.md §7).
#include <fmt/format.h>

#include <algorithm>

#include "internal.hpp"

namespace kiln::ops {

Library::Library(Device dev) : dev_(std::move(dev)), mu_(std::make_shared<std::mutex>()) {}

Kernel Library::kernel(std::string_view file, std::string_view name) {
  std::lock_guard g(*mu_);
  auto it = modules_.find(std::string(file));
  if (it == modules_.end()) it = modules_.emplace(std::string(file), dev_.load_ops(file)).first;
  return it->second.kernel(name);
}

Launch Library::grid() const {
  return {.grid = {std::max(1u, dev_.info().pe_count()), 1, 1}};
}

Buffer Library::alloc(size_t bytes) {
  try {
    return dev_.alloc(bytes, Memory::sram);
  } catch (const Error& e) {
    if (e.code() != Errc::out_of_memory) throw;
  }
  return dev_.alloc(bytes);
}

namespace {
// Smallest GEMM (m * n * k) for which copying A and B into SRAM first pays: below it a
// GEMM is a few tiles per PE and the staged kernel's barriers cost more than DRAM reuse gains.
constexpr uint64_t kStageMinWork = uint64_t(512) * 512 * 512;

void opt(Args& a, size_t i, const Buffer* b) {
  if (b)
    a.set(i, *b);
  else
    a.set_null(i);
}
}  // namespace

Args Library::gemm(const Buffer& a, const Buffer& b, const Buffer& c, const Gemm& g, const Buffer* bias) {
  static constexpr const char* names[] = {"kiln_gemm_f32", "kiln_gemm_bf16", "kiln_gemm_f16", "kiln_gemm_i8"};
  if (!g.m || !g.n || !g.k)
    throw Error(Errc::invalid_argument, fmt::format("gemm: empty shape {}x{}x{}", g.m, g.n, g.k));
  uint32_t lda = g.lda ? g.lda : (g.trans_a ? g.m : g.k);
  uint32_t ldb = g.ldb ? g.ldb : (g.trans_b ? g.k : g.n);
  uint32_t ldc = g.ldc ? g.ldc : g.n;
  // A leading dimension below the row length makes rows overlap: wrong results, not an error.
  auto ld_at_least = [&](const char* name, uint32_t ld, uint32_t cols, const char* why) {
    if (ld < cols)
      throw Error(Errc::invalid_argument, fmt::format("gemm: {} = {} is less than {} = {} (elements per row)", name,
                                                      ld, why, cols));
  };
  ld_at_least("lda", lda, g.trans_a ? g.m : g.k, g.trans_a ? "m (A transposed)" : "k");
  ld_at_least("ldb", ldb, g.trans_b ? g.k : g.n, g.trans_b ? "k (B transposed)" : "n");
  ld_at_least("ldc", ldc, g.n, "n");
  size_t esz = g.dtype == DType::f32 ? 4 : g.dtype == DType::i8 ? 1 : 2;
  auto need = [&](const Buffer& buf, uint64_t rows, uint64_t ld, uint64_t sz, const char* what) {
    if (rows * ld * sz > buf.size())
      throw Error(Errc::invalid_argument,
                  fmt::format("gemm: {} needs {} bytes, the buffer has {}", what, rows * ld * sz, buf.size()));
  };
  need(a, g.trans_a ? g.k : g.m, lda, esz, "A");
  need(b, g.trans_b ? g.n : g.k, ldb, esz, "B");
  need(c, g.m, ldc, 4, "C");
  if (bias) need(*bias, 1, g.n, 4, "bias");
  // int32 results: relu is the only activation that is exact on them
  if (g.dtype == DType::i8 && g.epilogue != Epilogue::none && g.epilogue != Epilogue::relu)
    throw Error(Errc::invalid_argument, "gemm: an int8 GEMM's epilogue is none or relu");
  uint32_t flags =
      (g.trans_a ? 1u : 0u) | (g.trans_b ? 2u : 0u) | (g.accumulate ? 4u : 0u) | (uint32_t(g.epilogue) << 8);
  // Placement: operands off chip are copied once into an SRAM workspace (owned by the
  // returned Args, so it lives until the launch completes) if there is room for it.
  Buffer ws;
  if (g.stage_in_sram && (a.memory() != Memory::sram || b.memory() != Memory::sram) &&
      uint64_t(g.m) * g.n * g.k >= kStageMinWork) {
    try {
      ws = dev_.alloc((uint64_t(g.m) * g.k + uint64_t(g.k) * g.n) * esz, Memory::sram);
    } catch (const Error& e) {
      if (e.code() != Errc::out_of_memory) throw;   // no room: stream from DRAM instead
    }
  }
  Args args(kernel("gemm", std::string(names[int(g.dtype)]) + (ws ? "_staged" : "")));
  args.set(0, a).set(1, b).set(2, c);
  opt(args, 3, bias);
  args.set(4, g.m).set(5, g.n).set(6, g.k).set(7, lda).set(8, ldb).set(9, ldc).set(10, flags);
  if (ws) args.set(11, ws);
  return args;
}

Args Library::eltwise(Binary op, const Buffer& a, const Buffer* b, const Buffer& out, uint64_t n, float scalar) {
  bool reads_b = op <= Binary::max || op == Binary::relu_grad;
  if (reads_b && !b) throw Error(Errc::invalid_argument, "eltwise: this op reads b, which is null");
  if (n * 4 > out.size() || n * 4 > a.size() || (b && n * 4 > b->size()))
    throw Error(Errc::invalid_argument, fmt::format("eltwise: {} elements do not fit the buffers", n));
  Args args(kernel("eltwise", "kiln_eltwise"));
  args.set(0, uint32_t(op)).set(1, a);
  opt(args, 2, b);
  args.set(3, out).set(4, n).set(5, scalar);
  return args;
}

Args Library::activation(Unary fn, const Buffer& x, const Buffer& y, uint64_t n) {
  if (n * 4 > x.size() || n * 4 > y.size())
    throw Error(Errc::invalid_argument, fmt::format("activation: {} elements do not fit", n));
  Args args(kernel("eltwise", "kiln_activation"));
  return std::move(args.set(0, uint32_t(fn)).set(1, x).set(2, y).set(3, n));
}

Args Library::softmax(const Buffer& x, const Buffer& y, uint32_t rows, uint32_t cols) {
  if (cols == 0 || cols > 16384) throw Error(Errc::invalid_argument, fmt::format("softmax: cols {} (1..16384)", cols));
  if (uint64_t(rows) * cols * 4 > std::min(x.size(), y.size()))
    throw Error(Errc::invalid_argument, "softmax: buffers too small");
  Args args(kernel("softmax", "kiln_softmax"));
  return std::move(args.set(0, x).set(1, y).set(2, rows).set(3, cols));
}

Args Library::layernorm(const Buffer& x, const Buffer* gamma, const Buffer* beta, const Buffer& y, uint32_t rows,
                        uint32_t cols, float eps) {
  if (uint64_t(rows) * cols * 4 > std::min(x.size(), y.size()))
    throw Error(Errc::invalid_argument, "layernorm: buffers too small");
  Args args(kernel("softmax", "kiln_layernorm"));
  args.set(0, x);
  opt(args, 1, gamma);
  opt(args, 2, beta);
  return std::move(args.set(3, y).set(4, rows).set(5, cols).set(6, eps));
}

Args Library::cross_entropy(const Buffer& logits, const Buffer& labels, const Buffer& loss, const Buffer* grad,
                            uint32_t rows, uint32_t cols, float grad_scale) {
  Args args(kernel("softmax", "kiln_cross_entropy"));
  args.set(0, logits).set(1, labels).set(2, loss);
  opt(args, 3, grad);
  return std::move(args.set(4, rows).set(5, cols).set(6, grad_scale));
}

Args Library::embedding_bag(const Buffer& table, uint64_t num_rows, uint32_t dim, const Buffer& indices,
                            const Buffer& offsets, uint32_t bags, BagMode mode, const Buffer& out) {
  if (uint64_t(bags) * dim * 4 > out.size()) throw Error(Errc::invalid_argument, "embedding_bag: output too small");
  if (num_rows * dim * 4 > table.size())
    throw Error(Errc::invalid_argument, "embedding_bag: table smaller than num_rows x dim");
  Args args(kernel("embedding", "kiln_embedding_bag"));
  return std::move(args.set(0, table)
                       .set(1, num_rows)
                       .set(2, dim)
                       .set(3, indices)
                       .set(4, offsets)
                       .set(5, bags)
                       .set(6, uint32_t(mode))
                       .set(7, out));
}

Args Library::transpose(const Buffer& in, const Buffer& out, uint32_t rows, uint32_t cols) {
  Args args(kernel("transpose", "kiln_transpose"));
  return std::move(args.set(0, in).set(1, out).set(2, rows).set(3, cols));
}

Args Library::sgd(const Buffer& w, const Buffer& g, uint64_t n, float lr, float weight_decay) {
  Args args(kernel("optim", "kiln_sgd"));
  return std::move(args.set(0, w).set(1, g).set(2, n).set(3, lr).set(4, weight_decay));
}

Args Library::sgd_momentum(const Buffer& w, const Buffer& g, const Buffer& v, uint64_t n, float lr, float momentum,
                           float weight_decay) {
  if (n * 4 > std::min({w.size(), g.size(), v.size()}))
    throw Error(Errc::invalid_argument, fmt::format("sgd_momentum: {} parameters do not fit w, g and v", n));
  Args args(kernel("optim", "kiln_sgd_momentum"));
  return std::move(args.set(0, w).set(1, g).set(2, v).set(3, n).set(4, lr).set(5, momentum).set(6, weight_decay));
}

Args Library::adam(const Buffer& w, const Buffer& g, const Buffer& m, const Buffer& v, uint64_t n, float lr,
                   uint32_t step, float beta1, float beta2, float eps) {
  if (step == 0) throw Error(Errc::invalid_argument, "adam: step counts from 1");
  Args args(kernel("optim", "kiln_adam"));
  return std::move(
      args.set(0, w).set(1, g).set(2, m).set(3, v).set(4, n).set(5, lr).set(6, beta1).set(7, beta2).set(8, eps).set(
          9, step));
}

}  // namespace kiln::ops
