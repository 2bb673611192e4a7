// SPDX-License-Identifier: MIT
// libkiln: typed wrappers over the Kiln op library (docs/pe-isa.md §7).
// Each op builds a validated argument block for the op-library kernel and
// launches it on a Queue (returning an Event) or records it into a
// CommandList (returning the list). Kernels are loaded on first use from
// kiln::find_kernel_binary() ("gemm.kbin", "softmax.kbin", ...).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "kiln/queue.hpp"

namespace kiln::ops {

enum class DType { f32, bf16, f16, i8 };
enum class Epilogue : uint32_t { none = 0, relu = 1, gelu = 2, sigmoid = 3, tanh = 4 };
/// relu_grad: out = a * [b > 0] (ReLU backward, b = the ReLU's output).
enum class Binary : uint32_t { add = 0, sub, mul, div, min, max, add_scalar, mul_scalar, fill, relu_grad };
enum class Unary : uint32_t { relu = 0, gelu, sigmoid, tanh, exp, log, sqrt, rsqrt, neg, abs, recip };
enum class BagMode : uint32_t { sum = 0, mean = 1 };

/// C[m x n] (+)= op(A)[m x k] * op(B)[k x n] (+ bias[n]), then the epilogue.
/// For i8, C and bias are int32 (wrap-around) and the epilogue is none or relu.
struct Gemm {
  uint32_t m = 0, n = 0, k = 0;
  uint32_t lda = 0, ldb = 0, ldc = 0;  ///< 0: packed (k or m, n or k, n)
  bool trans_a = false, trans_b = false, accumulate = false;
  Epilogue epilogue = Epilogue::none;
  DType dtype = DType::f32;  ///< type of A and B; C is f32 (i32 for i8)
  /// A or B in DRAM: copy A and B once into an SRAM workspace and compute from there
  /// (kiln_gemm_*_staged) when the GEMM is large enough to gain and the workspace fits
  /// in free SRAM; otherwise stream from where they are (docs/sdk.md, "Placement").
  bool stage_in_sram = true;
};

/// The op library of one device. Thread-safe; cheap to keep around.
class Library {
 public:
  explicit Library(Device dev);

  /// A kernel of an op-library file ("gemm", "kiln_gemm_f32").
  Kernel kernel(std::string_view file, std::string_view name);
  /// One workgroup per PE (every op strides its work over the grid).
  Launch grid() const;

  /// A buffer placed for the ops: on-chip SRAM while it has room, else device DRAM
  /// (docs/sdk.md, "Placement"). Ops on SRAM buffers run at the on-chip rate.
  [[nodiscard]] Buffer alloc(size_t bytes);

  Args gemm(const Buffer& a, const Buffer& b, const Buffer& c, const Gemm& g, const Buffer* bias = nullptr);
  Args eltwise(Binary op, const Buffer& a, const Buffer* b, const Buffer& out, uint64_t n, float scalar = 0);
  Args activation(Unary fn, const Buffer& x, const Buffer& y, uint64_t n);
  Args softmax(const Buffer& x, const Buffer& y, uint32_t rows, uint32_t cols);
  Args layernorm(const Buffer& x, const Buffer* gamma, const Buffer* beta, const Buffer& y, uint32_t rows,
                 uint32_t cols, float eps = 1e-5f);
  /// loss[r] per row; grad = (softmax - onehot) * grad_scale if `grad`.
  Args cross_entropy(const Buffer& logits, const Buffer& labels_i32, const Buffer& loss, const Buffer* grad,
                     uint32_t rows, uint32_t cols, float grad_scale);
  Args embedding_bag(const Buffer& table, uint64_t num_rows, uint32_t dim, const Buffer& indices_i32,
                     const Buffer& offsets_i32, uint32_t bags, BagMode mode, const Buffer& out);
  Args transpose(const Buffer& in, const Buffer& out, uint32_t rows, uint32_t cols);
  Args sgd(const Buffer& w, const Buffer& g, uint64_t n, float lr, float weight_decay = 0);
  /// v = momentum * v + (g + weight_decay * w); w -= lr * v
  Args sgd_momentum(const Buffer& w, const Buffer& g, const Buffer& v, uint64_t n, float lr, float momentum,
                    float weight_decay = 0);
  Args adam(const Buffer& w, const Buffer& g, const Buffer& m, const Buffer& v, uint64_t n, float lr, uint32_t step,
            float beta1 = 0.9f, float beta2 = 0.999f, float eps = 1e-8f);

  /// Launch prepared op arguments: `lib.run(q, lib.softmax(...))`.
  Event run(Queue& q, const Args& a, Queue::Deps deps = {}) { return q.launch(a.kernel(), grid(), a, deps); }
  /// (A staged GEMM's Args own their SRAM workspace: record or run each on one queue at a time.)
  CommandList& record(CommandList& cl, const Args& a) { return cl.launch(a.kernel(), grid(), a); }

 private:
  Device dev_;
  std::shared_ptr<std::mutex> mu_;
  std::map<std::string, Module> modules_;
};

}  // namespace kiln::ops
