// SPDX-License-Identifier: MIT
// kiln::ccl's C API (include/kiln/ccl.h) over the C++ one.
#include "kiln/ccl.h"

#include <string>

#include "kiln/ccl.hpp"

struct kiln_ccl_comm {
  kiln::ccl::Communicator comm;
  kiln::Queue queue;
};
struct kiln_ccl_buffer {
  kiln::Buffer buf;
};

namespace {
thread_local std::string last_error;

template <class F>
int guarded(F&& f) noexcept {
  try {
    f();
    last_error.clear();
    return KILN_CCL_OK;
  } catch (const kiln::Error& e) {
    last_error = e.what();
    return int(e.errc());
  } catch (const std::exception& e) {
    last_error = e.what();
    return KILN_CCL_EIO;
  }
}

int invalid(const char* msg) {
  last_error = msg;
  return KILN_CCL_EINVAL;
}
}  // namespace

extern "C" {

int kiln_ccl_comm_init_mpi(MPI_Comm comm, int device_index, kiln_ccl_comm** out) {
  if (!out) return invalid("kiln_ccl_comm_init_mpi: out is NULL");
  *out = nullptr;
  return guarded([&] {
    int idx = device_index;
    if (idx < 0) {
      MPI_Comm node;
      int local = 0;
      MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
      MPI_Comm_rank(node, &local);
      MPI_Comm_free(&node);
      auto n = kiln::enumerate().size();
      if (n == 0) throw kiln::Error(kiln::Errc::no_device, "kiln_ccl_comm_init_mpi: no Kiln device: " + kiln::diagnose());
      idx = int(size_t(local) % n);
    }
    auto dev = kiln::Device::open(idx);
    auto c = kiln::ccl::Communicator::mpi(comm, dev);
    auto q = dev.queue();
    *out = new kiln_ccl_comm{std::move(c), std::move(q)};
  });
}

void kiln_ccl_comm_destroy(kiln_ccl_comm* comm) { delete comm; }
int kiln_ccl_comm_rank(const kiln_ccl_comm* comm) { return comm ? comm->comm.rank() : -1; }
int kiln_ccl_comm_size(const kiln_ccl_comm* comm) { return comm ? comm->comm.size() : -1; }

int kiln_ccl_buffer_alloc(kiln_ccl_comm* comm, size_t bytes, kiln_ccl_buffer** out) {
  if (!comm || !out) return invalid("kiln_ccl_buffer_alloc: comm or out is NULL");
  *out = nullptr;
  return guarded([&] { kiln::Device dev = comm->comm.device();
    *out = new kiln_ccl_buffer{dev.alloc(bytes)}; });
}

void kiln_ccl_buffer_free(kiln_ccl_buffer* buf) { delete buf; }

int kiln_ccl_buffer_write(kiln_ccl_buffer* buf, const void* src, size_t bytes, size_t offset) {
  if (!buf || (!src && bytes)) return invalid("kiln_ccl_buffer_write: buf or src is NULL");
  return guarded([&] { buf->buf.write(std::span(static_cast<const std::byte*>(src), bytes), offset); });
}

int kiln_ccl_buffer_read(const kiln_ccl_buffer* buf, void* dst, size_t bytes, size_t offset) {
  if (!buf || (!dst && bytes)) return invalid("kiln_ccl_buffer_read: buf or dst is NULL");
  return guarded([&] { buf->buf.read(std::span(static_cast<std::byte*>(dst), bytes), offset); });
}

int kiln_ccl_allreduce(kiln_ccl_comm* comm, const kiln_ccl_buffer* send, kiln_ccl_buffer* recv, size_t count,
                       enum kiln_ccl_dtype dtype, enum kiln_ccl_op op) {
  if (!comm || !send || !recv) return invalid("kiln_ccl_allreduce: comm, send or recv is NULL");
  return guarded([&] {
    comm->comm.allreduce(comm->queue, send->buf, recv->buf, count, kiln::ccl::DType(dtype), kiln::ccl::Op(op)).wait();
  });
}

int kiln_ccl_reduce_scatter(kiln_ccl_comm* comm, const kiln_ccl_buffer* send, kiln_ccl_buffer* recv,
                            size_t recv_count, enum kiln_ccl_dtype dtype, enum kiln_ccl_op op) {
  if (!comm || !send || !recv) return invalid("kiln_ccl_reduce_scatter: comm, send or recv is NULL");
  return guarded([&] {
    comm->comm.reduce_scatter(comm->queue, send->buf, recv->buf, recv_count, kiln::ccl::DType(dtype), kiln::ccl::Op(op))
        .wait();
  });
}

int kiln_ccl_allgather(kiln_ccl_comm* comm, const kiln_ccl_buffer* send, kiln_ccl_buffer* recv, size_t send_count,
                       enum kiln_ccl_dtype dtype) {
  if (!comm || !send || !recv) return invalid("kiln_ccl_allgather: comm, send or recv is NULL");
  return guarded(
      [&] { comm->comm.allgather(comm->queue, send->buf, recv->buf, send_count, kiln::ccl::DType(dtype)).wait(); });
}

int kiln_ccl_broadcast(kiln_ccl_comm* comm, kiln_ccl_buffer* buf, size_t count, enum kiln_ccl_dtype dtype, int root) {
  if (!comm || !buf) return invalid("kiln_ccl_broadcast: comm or buf is NULL");
  return guarded([&] { comm->comm.broadcast(comm->queue, buf->buf, count, kiln::ccl::DType(dtype), root).wait(); });
}

int kiln_ccl_barrier(kiln_ccl_comm* comm) {
  if (!comm) return invalid("kiln_ccl_barrier: comm is NULL");
  return guarded([&] { comm->comm.barrier(comm->queue).wait(); });
}

const char* kiln_ccl_last_error(void) { return last_error.c_str(); }

}  // extern "C"

static_assert(KILN_CCL_EINVAL == int(kiln::Errc::invalid_argument) && KILN_CCL_ENOMEM == int(kiln::Errc::out_of_memory) &&
              KILN_CCL_EDEVICE_LOST == int(kiln::Errc::device_lost) &&
              KILN_CCL_EKERNEL_FAULT == int(kiln::Errc::kernel_fault) &&
              KILN_CCL_EJOB_FAILED == int(kiln::Errc::job_failed) && KILN_CCL_ENO_DEVICE == int(kiln::Errc::no_device) &&
              KILN_CCL_EIO == int(kiln::Errc::io_error),
              "ccl.h's codes are kiln::Errc values");
