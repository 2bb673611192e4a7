# SPDX-License-Identifier: MIT
# Shared build conventions for Kiln's host-side components.

set(KILN_WARNINGS -Wall -Wextra -Wshadow -Wno-unused-parameter)

# kiln_add_unit_test(NAME SOURCES... [LIBS libs...])
# A googletest binary run on the host by CTest (tier "unit").
function(kiln_add_unit_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES} ${ARG_UNPARSED_ARGUMENTS})
  target_compile_options(${name} PRIVATE ${KILN_WARNINGS})
  target_include_directories(${name} PRIVATE ${KILN_INCLUDE_DIR})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gtest_main Threads::Threads)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/unittests)
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60)
endfunction()

# kiln_add_vm_test(NAME SOURCES... [LIBS libs...])
# A googletest binary that needs the real driver and device: built on the
# host into bin/vmtests/, run inside the VM by scripts/run-tests in one boot.
# A test whose name contains "Unprivileged" is run as the non-root user.
function(kiln_add_vm_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES} ${ARG_UNPARSED_ARGUMENTS})
  target_compile_options(${name} PRIVATE ${KILN_WARNINGS})
  # tests/support: header-only helpers of the in-VM tests (module_param.hpp)
  target_include_directories(${name} PRIVATE ${KILN_INCLUDE_DIR} ${PROJECT_SOURCE_DIR}/tests/support)
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gtest_main Threads::Threads)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin/vmtests)
endfunction()

include(GoogleTest)
