# SPDX-License-Identifier: MIT
# kiln_add_kernel(<output.kbin> SOURCES <file.c>... [EMBED <symbol> <out.cpp>])
# Compile device kernels with kiln-cc at build time. With EMBED, also write a
# C++ file defining `extern const unsigned char <symbol>[]; extern const
# size_t <symbol>_size;` with the binary's bytes (for programs that must not
# depend on a file at run time). Set KILN_CC_COMMAND to override the compiler.
set(KILN_KERNEL_CMAKE_DIR ${CMAKE_CURRENT_LIST_DIR} CACHE INTERNAL "")
get_filename_component(_kiln_src_root ${CMAKE_CURRENT_LIST_DIR}/../../.. ABSOLUTE)
set(KILN_KERNEL_SOURCE_ROOT ${_kiln_src_root} CACHE INTERNAL "")

function(kiln_add_kernel output)
  cmake_parse_arguments(ARG "" "" "SOURCES;EMBED" ${ARGN})
  set(deps)
  if(KILN_CC_COMMAND)
    set(cc ${KILN_CC_COMMAND})
  elseif(TARGET kiln-cc)
    get_target_property(type kiln-cc TYPE)
    if(type STREQUAL "EXECUTABLE")
      set(cc $<TARGET_FILE:kiln-cc>)
    else()
      set(cc ${CMAKE_BINARY_DIR}/bin/kiln-cc)
    endif()
    set(deps kiln-cc)
  elseif(EXISTS ${KILN_KERNEL_SOURCE_ROOT}/userspace/kiln-cc/kiln-cc.py)
    find_package(Python3 COMPONENTS Interpreter REQUIRED)
    set(cc ${Python3_EXECUTABLE} ${KILN_KERNEL_SOURCE_ROOT}/userspace/kiln-cc/kiln-cc.py)
    set(deps ${KILN_KERNEL_SOURCE_ROOT}/userspace/kiln-cc/kiln-cc.py)
  else()
    find_program(KILN_CC_PROGRAM kiln-cc REQUIRED)
    set(cc ${KILN_CC_PROGRAM})
  endif()
  set(srcs)
  foreach(s ${ARG_SOURCES})
    get_filename_component(abs ${s} ABSOLUTE)
    list(APPEND srcs ${abs})
  endforeach()
  add_custom_command(OUTPUT ${output}
    COMMAND ${cc} ${srcs} -o ${output}
    DEPENDS ${srcs} ${deps}
    COMMENT "kiln-cc ${output}" VERBATIM)
  if(ARG_EMBED)
    list(GET ARG_EMBED 0 sym)
    list(GET ARG_EMBED 1 cpp)
    add_custom_command(OUTPUT ${cpp}
      COMMAND ${CMAKE_COMMAND} -DIN=${output} -DOUT=${cpp} -DSYM=${sym} -P ${KILN_KERNEL_CMAKE_DIR}/embed.cmake
      DEPENDS ${output} ${KILN_KERNEL_CMAKE_DIR}/embed.cmake VERBATIM)
  endif()
endfunction()
