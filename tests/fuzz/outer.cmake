# SPDX-License-Identifier: MIT
# Included by tests/fuzz/CMakeLists.txt when it is part of the top-level build: builds
# the fuzz targets with clang in <build>/fuzz and registers their smoke runs with CTest.
find_program(KILN_FUZZ_CC NAMES clang-14 clang)
find_program(KILN_FUZZ_CXX NAMES clang++-14 clang++)
set(_why "")
if(NOT KILN_FUZZ_CC OR NOT KILN_FUZZ_CXX)
  set(_why "no clang found")
else()
  # The fuzzer and sanitizer runtimes come with compiler-rt (libclang-rt-14-dev),
  # which a bare clang install lacks: try a link.
  set(_probe ${CMAKE_CURRENT_BINARY_DIR}/fuzz_probe)
  file(WRITE ${_probe}.cc
       "extern \"C\" int LLVMFuzzerTestOneInput(const unsigned char *, unsigned long) { return 0; }\n")
  execute_process(COMMAND ${KILN_FUZZ_CXX} -fsanitize=fuzzer,address,undefined ${_probe}.cc -o ${_probe}
                  RESULT_VARIABLE _rc OUTPUT_QUIET ERROR_QUIET)
  if(NOT _rc EQUAL 0)
    set(_why "${KILN_FUZZ_CXX} cannot link -fsanitize=fuzzer,address,undefined (install libclang-rt-14-dev)")
  endif()
endif()
if(_why)
  message(STATUS "tests/fuzz: libFuzzer targets skipped: ${_why}")
  return()
endif()

include(ExternalProject)
set(KILN_FUZZ_BUILD_DIR ${CMAKE_BINARY_DIR}/fuzz CACHE INTERNAL "build directory of tests/fuzz")
ExternalProject_Add(kiln_fuzz
  SOURCE_DIR ${CMAKE_CURRENT_SOURCE_DIR}
  BINARY_DIR ${KILN_FUZZ_BUILD_DIR}
  CMAKE_ARGS -DCMAKE_C_COMPILER=${KILN_FUZZ_CC} -DCMAKE_CXX_COMPILER=${KILN_FUZZ_CXX}
  INSTALL_COMMAND ""
  BUILD_ALWAYS ON            # the sources live in this tree: the inner build decides
  USES_TERMINAL_BUILD ON)    # show the inner build's progress
message(STATUS "tests/fuzz: libFuzzer targets in ${KILN_FUZZ_BUILD_DIR}/bin (clang: ${KILN_FUZZ_CXX})")

# A few seconds of each target from its corpus (which holds the regression inputs of
# every bug found so far): a crash, a sanitizer report or a failed check fails the test.
foreach(t ${KILN_FUZZ_TARGETS})
  string(REGEX REPLACE "^fuzz_" "fuzz." _name ${t})
  add_test(NAME ${_name}
           COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/run-fuzz ${t}
                   --build ${KILN_FUZZ_BUILD_DIR} --seconds 5 --work ${CMAKE_CURRENT_BINARY_DIR}/smoke)
  set_tests_properties(${_name} PROPERTIES TIMEOUT 120 LABELS fuzz)
endforeach()
