// SPDX-License-Identifier: MIT
// Passing a dma-buf between the MPI ranks of one machine.
#pragma once

#include <mpi.h>

#include <vector>

namespace kiln::ccl::detail {

/// Collective over `node` (ranks of one machine, MPI_COMM_TYPE_SHARED): every rank offers
/// `fd` and receives each peer's, through a Unix socket of the abstract namespace
/// (SCM_RIGHTS; the processes need not share a filesystem or be related). Returns one fd
/// per rank of `node`, -1 at this rank's index and where a transfer failed; the caller
/// owns the fds. Never leaves a peer waiting: every step has a bounded wait, and the
/// ranks agree on whether every transfer worked (the bool).
std::pair<std::vector<int>, bool> share_fds(MPI_Comm node, int fd);

}  // namespace kiln::ccl::detail
