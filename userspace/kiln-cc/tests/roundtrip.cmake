# Compile a kernel, check the metadata and the disassembly.
execute_process(COMMAND ${KILN_CC} ${SRC} -o ${OUT} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "kiln-cc failed: ${rc}")
endif()
execute_process(COMMAND ${KILN_CC} --info ${OUT} OUTPUT_VARIABLE info RESULT_VARIABLE rc)
foreach(want "kernel meta_test" "local_mem=65536" "in               buffer r   f32"
        "out              buffer w   bf16" "q                scalar -   i8    size=1 align=1 offset=16"
        "scale            scalar -   f64   size=8 align=8 offset=24" "count            scalar -   u64"
        "kernel fixed_width" "u8p              buffer r   u8 " "i8p              buffer rw  i8 "
        "i16p             buffer r   i16 " "i32p             buffer rw  i32 " "u32p             buffer rw  u32 "
        "u64p             buffer r   u64 " "szp              buffer rw  u64 ")
  string(FIND "${info}" "${want}" pos)
  if(pos EQUAL -1)
    message(FATAL_ERROR "metadata lacks '${want}':\n${info}")
  endif()
endforeach()
execute_process(COMMAND ${KILN_CC} --disassemble ${OUT} OUTPUT_VARIABLE dis RESULT_VARIABLE rc)
foreach(want "kiln.se.fill" "kiln.dma.copy2d" "kiln.dma.wait" "kiln.exit")
  string(FIND "${dis}" "${want}" pos)
  if(pos EQUAL -1)
    message(FATAL_ERROR "disassembly lacks '${want}'")
  endif()
endforeach()
# A reader that closes the pipe early (`kiln-cc --info f | head`; here `true`, which reads
# nothing) ends kiln-cc quietly, like any filter, without a BrokenPipeError traceback.
execute_process(COMMAND ${KILN_CC} --info ${OUT} COMMAND true OUTPUT_QUIET ERROR_VARIABLE err)
if(err MATCHES "Traceback|BrokenPipe")
  message(FATAL_ERROR "kiln-cc --info | head: ${err}")
endif()
