// SPDX-License-Identifier: MIT
#include <kiln/device/kiln_device.h>
KILN_KERNEL void broken(float *x) { x[0] = undeclared_variable; }
