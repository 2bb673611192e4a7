# SPDX-License-Identifier: MIT
# kiln_add_kernel(<output.kbin> SOURCES <file.c>... [EMBED <symbol> <out.cpp>]
#                 [TARGET <name>])
# Compile device kernels with kiln-cc at build time.  Creates the target <name> (default
# kbin_<output name without extension>, e.g. kbin_vadd), built by `all`, that produces
# <output.kbin>; a relative output is taken in the current binary directory.  With EMBED,
# also write a C++ file defining `extern const unsigned char <symbol>[]; extern const
# size_t <symbol>_size;` with the binary's bytes (for programs that must not depend on a
# file at run time); add it to the program's sources.
# The compiler is KILN_CC: the build tree's kiln-cc inside the Kiln build, the installed
# one after find_package(kiln).  Set KILN_CC_COMMAND to use another.
set(KILN_KERNEL_CMAKE_DIR ${CMAKE_CURRENT_LIST_DIR} CACHE INTERNAL "")

function(kiln_add_kernel output)
  cmake_parse_arguments(ARG "" "TARGET" "SOURCES;EMBED" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "kiln_add_kernel(${output}): no SOURCES")
  endif()
  if(KILN_CC_COMMAND)
    set(cc ${KILN_CC_COMMAND})
    set(deps)
  elseif(KILN_CC)
    set(cc ${KILN_CC})
    set(deps ${KILN_CC})
    if(TARGET kiln_device_rt)   # inside the Kiln build: the runtime archive kiln-cc links
      list(APPEND deps ${KILN_DEVICE_RT_LIB} kiln_device_rt)
    endif()
  else()
    message(FATAL_ERROR "kiln_add_kernel: no kiln-cc known; call find_package(kiln) first "
                        "or set KILN_CC_COMMAND")
  endif()
  get_filename_component(output ${output} ABSOLUTE BASE_DIR ${CMAKE_CURRENT_BINARY_DIR})
  get_filename_component(name ${output} NAME_WE)
  if(NOT ARG_TARGET)
    set(ARG_TARGET kbin_${name})
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
  set(outputs ${output})
  if(ARG_EMBED)
    list(GET ARG_EMBED 0 sym)
    list(GET ARG_EMBED 1 cpp)
    add_custom_command(OUTPUT ${cpp}
      COMMAND ${CMAKE_COMMAND} -DIN=${output} -DOUT=${cpp} -DSYM=${sym} -P ${KILN_KERNEL_CMAKE_DIR}/embed.cmake
      DEPENDS ${output} ${KILN_KERNEL_CMAKE_DIR}/embed.cmake VERBATIM)
    list(APPEND outputs ${cpp})
  endif()
  add_custom_target(${ARG_TARGET} ALL DEPENDS ${outputs})
endfunction()
