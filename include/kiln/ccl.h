/* SPDX-License-Identifier: MIT */
/*
 * kiln::ccl's C API: collectives over the ranks of an MPI job, one Kiln device
 * per rank (docs/collectives.md). A communicator owns its device and one
 * queue; buffers are allocated through it in device DRAM. Every call is
 * synchronous: it returns when the result is in the buffer. Functions return
 * 0 or a kiln::Errc value (KILN_CCL_E*); kiln_ccl_last_error() has the message
 * of the calling thread's last failure.
 */
#ifndef KILN_CCL_H
#define KILN_CCL_H

#include <mpi.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kiln_ccl_comm kiln_ccl_comm;
typedef struct kiln_ccl_buffer kiln_ccl_buffer;

enum kiln_ccl_dtype { KILN_CCL_F32 = 0, KILN_CCL_BF16 = 1 };
enum kiln_ccl_op { KILN_CCL_SUM = 0, KILN_CCL_MAX = 1 };

/* Return values: kiln::Errc */
enum {
	KILN_CCL_OK = 0,
	KILN_CCL_EINVAL = 1,        /* invalid argument */
	KILN_CCL_ENOMEM = 2,        /* out of memory */
	KILN_CCL_EDEVICE_LOST = 6,  /* this rank's device or context is lost */
	KILN_CCL_EKERNEL_FAULT = 7, /* a kernel faulted on this rank's device */
	KILN_CCL_EJOB_FAILED = 8,   /* device work failed, here or on another rank */
	KILN_CCL_ENO_DEVICE = 11,   /* no usable Kiln device */
	KILN_CCL_EIO = 13,          /* any other error (MPI, OS) */
};

/* Collective over comm. device_index < 0: the rank's index among the ranks of its
 * node (MPI_COMM_TYPE_SHARED) modulo the number of devices. */
int kiln_ccl_comm_init_mpi(MPI_Comm comm, int device_index, kiln_ccl_comm **out);
void kiln_ccl_comm_destroy(kiln_ccl_comm *comm);
int kiln_ccl_comm_rank(const kiln_ccl_comm *comm);
int kiln_ccl_comm_size(const kiln_ccl_comm *comm);

int kiln_ccl_buffer_alloc(kiln_ccl_comm *comm, size_t bytes, kiln_ccl_buffer **out);
void kiln_ccl_buffer_free(kiln_ccl_buffer *buf);
int kiln_ccl_buffer_write(kiln_ccl_buffer *buf, const void *src, size_t bytes, size_t offset);
int kiln_ccl_buffer_read(const kiln_ccl_buffer *buf, void *dst, size_t bytes, size_t offset);

int kiln_ccl_allreduce(kiln_ccl_comm *comm, const kiln_ccl_buffer *send, kiln_ccl_buffer *recv,
		       size_t count, enum kiln_ccl_dtype dtype, enum kiln_ccl_op op);
int kiln_ccl_reduce_scatter(kiln_ccl_comm *comm, const kiln_ccl_buffer *send, kiln_ccl_buffer *recv,
			    size_t recv_count, enum kiln_ccl_dtype dtype, enum kiln_ccl_op op);
int kiln_ccl_allgather(kiln_ccl_comm *comm, const kiln_ccl_buffer *send, kiln_ccl_buffer *recv,
		       size_t send_count, enum kiln_ccl_dtype dtype);
int kiln_ccl_broadcast(kiln_ccl_comm *comm, kiln_ccl_buffer *buf, size_t count,
		       enum kiln_ccl_dtype dtype, int root);
int kiln_ccl_barrier(kiln_ccl_comm *comm);

const char *kiln_ccl_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* KILN_CCL_H */
