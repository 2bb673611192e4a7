// SPDX-License-Identifier: MIT
// dp_train: the MLP of samples/mlp_train (2-64-64-4, 512 samples, SGD with momentum)
// trained data-parallel on N devices, one MPI rank per device:
//
//   mpirun -np 4 dp_train          (as root add --allow-run-as-root; docs/collectives.md)
//
// Every rank starts from the same weights, runs forward and backward on its shard of
// the batch on its own device, and the ranks sum their gradients with a kiln::ccl
// allreduce on the devices; every rank then applies the same update, so the replicas
// stay identical. Rank 0 first trains the same model on the whole batch on one device
// (as mlp_train does): the data-parallel loss curve must follow that single-device
// curve within 1 %. Per epoch it prints the modelled compute and communication time
// (the cost model's time on the chip) and the wall time. Exits 0 after printing PASS.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <kiln/ccl.hpp>
#include <kiln/kiln.hpp>
#include <numeric>
#include <optional>
#include <random>
#include <vector>

namespace {
constexpr uint32_t kBatch = 512, kIn = 2, kHidden = 64, kClasses = 4, kEpochs = 40;
constexpr double kTolerance = 0.01;  // relative, per epoch, against the single-device loss

void make_data(std::vector<float>& x, std::vector<uint32_t>& y) {
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> angle(0, 6.2831853f), noise(-0.08f, 0.08f);
  for (uint32_t i = 0; i < kBatch; i++) {
    uint32_t c = i % kClasses;
    float r = (c & 1) ? 0.8f : 0.35f, a = angle(rng);
    float px = r * std::cos(a), py = r * std::sin(a);
    if ((c >> 1) != (px > 0)) px = -px;
    x[i * 2] = px + noise(rng), x[i * 2 + 1] = py + noise(rng);
    y[i] = c;
  }
}

struct Layer {
  uint32_t in, out;
  kiln::Buffer w, b, vw, vb;  // weights, bias, momentum
  size_t dw_off, db_off;      // where dW and db live in the flat gradient buffer (bytes)
};

// One replica of the model on one device, training on `rows` samples of the batch.
// Gradients go to one flat buffer so that one allreduce sums them all.
class Replica {
 public:
  Replica(kiln::Device dev, std::span<const float> x, std::span<const uint32_t> y)
      : dev_(dev), q_(dev.queue()), lib_(dev), rows_(uint32_t(y.size())), fwd_(dev), upd_(dev) {
    namespace ops = kiln::ops;
    auto f32 = [&](size_t n) { return lib_.alloc(n * sizeof(float)); };
    std::mt19937 rng(1);  // the same initial weights on every replica
    const std::pair<uint32_t, uint32_t> shapes[] = {{kIn, kHidden}, {kHidden, kHidden}, {kHidden, kClasses}};
    size_t goff = 0;
    for (auto [in, out] : shapes) {
      Layer l{in, out, f32(in * out), f32(out), f32(in * out), f32(out), goff, goff + in * out * 4};
      goff += (in * out + out) * 4;
      std::normal_distribution<float> he(0, std::sqrt(2.0f / float(in)));
      std::vector<float> w(in * out);
      for (auto& v : w) v = he(rng);
      q_.upload(l.w, w);
      for (auto* z : {&l.b, &l.vw, &l.vb}) q_.fill(*z, 0u);
      layers_.push_back(std::move(l));
    }
    nparams_ = goff / 4;
    grads_ = f32(nparams_);
    // Per-layer gradient buffers: the GEMMs write whole buffers; the step then packs
    // them into grads_ and the update unpacks the summed ones.
    for (auto& l : layers_) dw_.push_back(f32(l.in * l.out)), db_.push_back(f32(l.out));
    X_ = f32(rows_ * kIn), Y_ = lib_.alloc(rows_ * 4), ones_ = f32(rows_);
    for (uint32_t i = 0; i < 3; i++) {
      uint32_t w = i < 2 ? kHidden : kClasses;
      H_.push_back(f32(rows_ * w)), D_.push_back(f32(rows_ * w));
    }
    loss_ = f32(rows_);
    q_.upload(X_, x);
    q_.upload(Y_, y);
    q_.upload(ones_, std::vector<float>(rows_, 1.0f));
    host_loss_.resize(rows_);
    host_logits_.resize(size_t(rows_) * kClasses);

    // forward + backward on this shard; the loss gradient is scaled by the global
    // batch, so the sum of the shards' gradients is the whole batch's gradient.
    const kiln::Buffer* in = &X_;
    for (size_t l = 0; l < 3; l++) {
      auto& L = layers_[l];
      lib_.record(fwd_, lib_.gemm(*in, L.w, H_[l],
                                  {.m = rows_, .n = L.out, .k = L.in,
                                   .epilogue = l < 2 ? ops::Epilogue::relu : ops::Epilogue::none},
                                  &L.b));
      in = &H_[l];
    }
    lib_.record(fwd_, lib_.cross_entropy(H_[2], Y_, loss_, &D_[2], rows_, kClasses, 1.0f / kBatch));
    for (size_t l = 3; l-- > 0;) {
      auto& L = layers_[l];
      const kiln::Buffer& layer_in = l ? H_[l - 1] : X_;
      lib_.record(fwd_, lib_.gemm(layer_in, D_[l], dw_[l], {.m = L.in, .n = L.out, .k = rows_, .trans_a = true}));
      lib_.record(fwd_, lib_.gemm(ones_, D_[l], db_[l], {.m = 1, .n = L.out, .k = rows_}));
      if (l > 0) {
        lib_.record(fwd_, lib_.gemm(D_[l], L.w, D_[l - 1], {.m = rows_, .n = L.in, .k = L.out, .trans_b = true}));
        lib_.record(fwd_, lib_.eltwise(ops::Binary::relu_grad, D_[l - 1], &H_[l - 1], D_[l - 1], rows_ * L.in));
      }
      fwd_.copy(grads_, dw_[l], L.in * L.out * 4, L.dw_off);
      fwd_.copy(grads_, db_[l], L.out * 4, L.db_off);
    }
    fwd_.read(std::as_writable_bytes(std::span(host_loss_)), loss_);
    fwd_.read(std::as_writable_bytes(std::span(host_logits_)), H_[2]);
    // update: unpack the (summed) gradients, SGD with momentum
    for (size_t l = 0; l < 3; l++) {
      auto& L = layers_[l];
      upd_.copy(dw_[l], grads_, L.in * L.out * 4, 0, L.dw_off);
      upd_.copy(db_[l], grads_, L.out * 4, 0, L.db_off);
      lib_.record(upd_, lib_.sgd_momentum(L.w, dw_[l], L.vw, L.in * L.out, 0.05f, 0.9f));
      lib_.record(upd_, lib_.sgd_momentum(L.b, db_[l], L.vb, L.out, 0.05f, 0.9f));
    }
    q_.finish();
  }

  // One epoch. `allreduce` (if any) sums grads_ over the ranks. Returns this shard's
  // summed loss and number of correct predictions; `compute` gets the modelled time.
  std::pair<double, uint32_t> epoch(std::span<const uint32_t> y, std::chrono::nanoseconds& compute,
                                    kiln::ccl::Communicator* comm) {
    auto e = q_.submit(fwd_);
    e.wait();
    compute += e.device_time();
    if (comm) comm->allreduce(q_, grads_, grads_, nparams_, kiln::ccl::DType::f32, kiln::ccl::Op::sum).wait();
    auto u = q_.submit(upd_);
    u.wait();
    compute += u.device_time();
    double loss = std::accumulate(host_loss_.begin(), host_loss_.end(), 0.0);
    uint32_t correct = 0;
    for (uint32_t i = 0; i < rows_; i++) {
      const float* row = &host_logits_[size_t(i) * kClasses];
      correct += uint32_t(std::max_element(row, row + kClasses) - row) == y[i];
    }
    return {loss, correct};
  }

  size_t nparams() const { return nparams_; }

 private:
  kiln::Device dev_;
  kiln::Queue q_;
  kiln::ops::Library lib_;
  uint32_t rows_;
  std::vector<Layer> layers_;
  std::vector<kiln::Buffer> dw_, db_, H_, D_;
  kiln::Buffer grads_, X_, Y_, ones_, loss_;
  size_t nparams_ = 0;
  std::vector<float> host_loss_, host_logits_;
  kiln::CommandList fwd_, upd_;
};

double us(std::chrono::nanoseconds t) { return double(t.count()) / 1e3; }

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 1, ok = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  try {
    auto ndev = kiln::enumerate().size();
    if (ndev == 0) throw kiln::Error(kiln::Errc::no_device, "no Kiln device: " + kiln::diagnose());
    auto dev = kiln::Device::open(int(size_t(rank) % ndev));
    std::vector<float> x(kBatch * kIn);
    std::vector<uint32_t> y(kBatch);
    make_data(x, y);

    // The single-device curve: rank 0 trains on the whole batch alone.
    std::vector<double> single(kEpochs);
    if (rank == 0) {
      Replica one(dev, x, y);
      std::chrono::nanoseconds t{};
      for (uint32_t e = 0; e < kEpochs; e++) single[e] = one.epoch(y, t, nullptr).first / kBatch;
      std::printf("dp_train: %d ranks, 2-%u-%u-%u MLP (%zu parameters), %u samples; single device: loss %.4f -> %.4f, "
                  "%.1f us modelled per epoch\n",
                  size, kHidden, kHidden, kClasses, one.nparams(), kBatch, single[0], single[kEpochs - 1],
                  us(t) / kEpochs);
    }
    MPI_Bcast(single.data(), int(kEpochs), MPI_DOUBLE, 0, MPI_COMM_WORLD);

    // This rank's shard: rows [first, first + n) of the batch.
    uint32_t base = kBatch / uint32_t(size), rem = kBatch % uint32_t(size);
    uint32_t first = uint32_t(rank) * base + std::min(uint32_t(rank), rem), n = base + (uint32_t(rank) < rem);
    Replica rep(dev, std::span(x).subspan(first * kIn, n * kIn), std::span(y).subspan(first, n));
    auto comm = kiln::ccl::Communicator::mpi(MPI_COMM_WORLD, dev);
    if (rank == 0)
      std::printf("  rank 0 on %s, %u samples per rank; gradients: one allreduce of %zu fp32 (%s)\n\n"
                  "  epoch   loss     single   accuracy   compute us   comm us   comm wall ms\n",
                  dev.info().path.c_str(), n, rep.nparams(),
                  std::string(kiln::ccl::to_string(comm.allreduce_algorithm(rep.nparams(), kiln::ccl::DType::f32)))
                      .c_str());
    double worst = 0, last = 0, acc = 0;
    for (uint32_t e = 0; e < kEpochs; e++) {
      std::chrono::nanoseconds compute{};
      comm.reset_stats();
      auto [loss, correct] = rep.epoch(std::span(y).subspan(first, n), compute, &comm);
      double sums[2] = {loss, double(correct)}, tot[2];
      MPI_Allreduce(sums, tot, 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
      // Modelled time of the step: the slowest rank's compute and communication.
      double mine[2] = {us(compute), us(comm.stats().modelled())}, slow[2];
      MPI_Allreduce(mine, slow, 2, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
      last = tot[0] / kBatch, acc = 100.0 * tot[1] / kBatch;
      worst = std::max(worst, std::abs(last - single[e]) / single[e]);
      if (rank == 0 && (e == 0 || (e + 1) % 5 == 0))
        std::printf("  %5u   %.4f   %.4f   %6.1f %%   %10.1f   %7.1f   %12.1f\n", e + 1, last, single[e], acc, slow[0],
                    slow[1], double(comm.stats().wall.count()) / 1e6);
    }
    bool pass = worst <= kTolerance && last < single[0] * 0.7 && acc >= 75.0;
    if (rank == 0)
      std::printf("\n  loss %.4f -> %.4f on %d ranks, accuracy %.1f %%; largest deviation from the single-device "
                  "curve %.3f %% (tolerance %.1f %%)\n  %s\n",
                  single[0], last, size, acc, worst * 100, kTolerance * 100,
                  pass ? "PASS: data-parallel training follows the single-device curve"
                       : "FAIL: data-parallel training left the single-device curve");
    ok = pass;
  } catch (const std::exception& e) {
    // Errors of the collectives reach every rank (kiln::ccl agrees on them); anything
    // else happened on this rank alone, and its peers may be waiting for it in MPI:
    // end the whole job rather than leave them hanging.
    std::fprintf(stderr, "dp_train rank %d: %s\n", rank, e.what());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  int all = 0;
  MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  MPI_Finalize();
  return all ? 0 : 1;
}
