// SPDX-License-Identifier: MIT
// The stress tests use the driver tests' raw-ioctl and packet helpers.
#pragma once

#include <algorithm>
#include <stdexcept>

#include "../driver/kiln_drv_util.h"

namespace ks {
using namespace kt;
}  // namespace ks
