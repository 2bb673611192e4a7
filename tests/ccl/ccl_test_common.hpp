// SPDX-License-Identifier: MIT
// Inputs and expected results of the collective tests, the same in every process.
#pragma once

#include <kiln/ccl.hpp>

#include <cstring>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace ccl_test {

using kiln::ccl::DType;
using kiln::ccl::Op;

// Rank r's input: values of widely different magnitudes and both signs, so the order
// of a sum shows in its bits (a reduction in any other order fails the comparison).
inline std::vector<std::byte> input(int rank, size_t count, DType t, uint32_t seed) {
  std::mt19937 rng(seed * 7919u + uint32_t(rank) * 104729u + uint32_t(count));
  std::uniform_real_distribution<float> mant(-1.0f, 1.0f);
  std::uniform_int_distribution<int> ex(-12, 12);
  std::vector<std::byte> out(count * kiln::ccl::dtype_size(t));
  for (size_t i = 0; i < count; i++) {
    float v = std::ldexp(mant(rng), ex(rng));
    if (t == DType::bf16) {
      uint16_t b = kiln::ccl::to_bf16(v);
      std::memcpy(out.data() + i * 2, &b, 2);
    } else {
      std::memcpy(out.data() + i * 4, &v, 4);
    }
  }
  return out;
}

inline std::vector<std::byte> expected_allreduce(int nranks, size_t count, DType t, Op op, uint32_t seed) {
  std::vector<std::vector<std::byte>> ins;
  std::vector<std::span<const std::byte>> spans;
  for (int r = 0; r < nranks; r++) ins.push_back(input(r, count, t, seed));
  for (auto& v : ins) spans.emplace_back(v);
  return kiln::ccl::reference_reduce(spans, t, op);
}

// First differing element, or -1.
inline long first_diff(std::span<const std::byte> a, std::span<const std::byte> b, DType t) {
  size_t es = kiln::ccl::dtype_size(t);
  if (a.size() != b.size()) return 0;
  for (size_t i = 0; i < a.size() / es; i++)
    if (std::memcmp(a.data() + i * es, b.data() + i * es, es)) return long(i);
  return -1;
}

// The size classes every op is tested at: tiny and odd, tree-sized (not a power of two),
// ring-sized (not a power of two, not a multiple of the rank count), several pieces.
inline const std::vector<size_t>& counts() {
  static const std::vector<size_t> c = {1, 7, 1000, 12345, 100003};
  return c;
}

}  // namespace ccl_test

namespace ccl_test {

// Runs every collective, op, dtype and size class on this rank and compares the result
// with the reference bit for bit. Collective: every rank calls it with the same
// arguments. Returns the failures (empty: all passed); `checks` counts comparisons.
inline std::vector<std::string> check_all(kiln::ccl::Communicator& c, kiln::Queue& q, uint32_t seed,
                                          const std::vector<size_t>& cs, size_t& checks) {
  std::vector<std::string> fails;
  int N = c.size(), me = c.rank();
  auto dev = c.device();
  auto tag = [&](std::string_view what, DType t, size_t n) {
    return std::string(what) + " " + std::string(kiln::ccl::to_string(t)) + " count " + std::to_string(n) + " (" +
           std::to_string(N) + " ranks, rank " + std::to_string(me) + ")";
  };
  auto compare = [&](const std::string& name, const kiln::Buffer& b, std::span<const std::byte> want, DType t) {
    std::vector<std::byte> got(want.size());
    if (!got.empty()) b.read(std::span(got));
    checks++;
    long d = first_diff(got, want, t);
    if (d >= 0) fails.push_back(name + ": differs from the reference at element " + std::to_string(d));
  };
  for (DType t : {DType::f32, DType::bf16}) {
    size_t es = kiln::ccl::dtype_size(t);
    for (size_t n : cs) {
      auto in = input(me, n, t, seed);
      for (Op op : {Op::sum, Op::max}) {
        auto send = dev.alloc(n * es), recv = dev.alloc(n * es);
        send.write(std::span<const std::byte>(in));
        c.allreduce(q, send, recv, n, t, op).wait();
        compare(tag(std::string("allreduce ") + std::string(kiln::ccl::to_string(op)) + " (" +
                        std::string(kiln::ccl::to_string(c.allreduce_algorithm(n, t))) + ")",
                    t, n),
                recv, expected_allreduce(N, n, t, op, seed), t);
        if (op == Op::sum) {  // in place
          c.allreduce(q, send, send, n, t, op).wait();
          compare(tag("allreduce sum in place", t, n), send, expected_allreduce(N, n, t, op, seed), t);
        }
      }
      {  // reduce-scatter: rank r gets block r of the reduction of N * n elements
        auto rin = input(me, N * n, t, seed + 1);
        auto send = dev.alloc(N * n * es), recv = dev.alloc(n * es);
        send.write(std::span<const std::byte>(rin));
        c.reduce_scatter(q, send, recv, n, t, Op::sum).wait();
        auto full = expected_allreduce(N, N * n, t, Op::sum, seed + 1);
        compare(tag("reduce_scatter sum", t, n), recv,
                std::span<const std::byte>(full).subspan(size_t(me) * n * es, n * es), t);
      }
      {  // allgather
        auto send = dev.alloc(n * es), recv = dev.alloc(N * n * es);
        send.write(std::span<const std::byte>(in));
        c.allgather(q, send, recv, n, t).wait();
        std::vector<std::byte> want;
        for (int r = 0; r < N; r++) {
          auto x = input(r, n, t, seed);
          want.insert(want.end(), x.begin(), x.end());
        }
        compare(tag("allgather", t, n), recv, want, t);
      }
      {  // broadcast from a root that is not always 0
        int root = int(n % size_t(N));
        auto buf = dev.alloc(n * es);
        buf.write(std::span<const std::byte>(in));
        c.broadcast(q, buf, n, t, root).wait();
        compare(tag("broadcast root " + std::to_string(root), t, n), buf, input(root, n, t, seed), t);
      }
    }
  }
  c.barrier(q).wait();
  return fails;
}

}  // namespace ccl_test
