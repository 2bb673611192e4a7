// SPDX-License-Identifier: MIT
#pragma once

namespace kiln {
inline constexpr int version_major = 0;
inline constexpr int version_minor = 1;
inline constexpr int version_patch = 0;
/// Driver UAPI major version this libkiln speaks.
inline constexpr int uapi_major = 1;
const char* version_string() noexcept;
}  // namespace kiln
