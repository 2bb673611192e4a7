// SPDX-License-Identifier: MIT
// libkiln: the Kiln K1 accelerator SDK. One include for the whole API.
#pragma once

#include "kiln/buffer.hpp"
#include "kiln/device.hpp"
#include "kiln/error.hpp"
#include "kiln/module.hpp"
#include "kiln/ops.hpp"
#include "kiln/queue.hpp"
#include "kiln/version.hpp"
