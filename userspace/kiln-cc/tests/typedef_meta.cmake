# Compile typedef_kernel.c and check that typedef'd parameter types reach the metadata as
# the types they stand for.
execute_process(COMMAND ${KILN_CC} ${SRC} -o ${OUT} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "kiln-cc failed: ${rc}")
endif()
execute_process(COMMAND ${KILN_CC} --info ${OUT} OUTPUT_VARIABLE info RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "kiln-cc --info failed: ${rc}")
endif()
foreach(want
    "w                buffer r   f32   size=8 align=8 offset=0"
    "out              buffer rw  f32   size=8 align=8 offset=8"
    "cin              buffer r   f32   size=8 align=8 offset=16"
    "bytes            buffer w   u8    size=8 align=8 offset=24"
    "idx              buffer r   i32   size=8 align=8 offset=32"
    "n                scalar -   u32   size=4 align=4 offset=40"
    "q                scalar -   i8    size=1 align=1 offset=44"
    "fp               buffer rw  f32   size=8 align=8 offset=48"
    "qin              buffer rw  i8    size=8 align=8 offset=56"
    "bf               buffer rw  bf16  size=8 align=8 offset=64"
    "h                buffer r   f16   size=8 align=8 offset=72"
    "mode             scalar -   i32   size=4 align=4 offset=80"
    "sbf              scalar -   bf16  size=2 align=2 offset=84"
    "sidx             scalar -   i32   size=4 align=4 offset=88"
    "sb               scalar -   u8    size=1 align=1 offset=92"
    "flag             scalar -   u8    size=1 align=1 offset=93"
    "us               scalar -   u16   size=2 align=2 offset=94"
    "l                scalar -   i64   size=8 align=8 offset=96"
    "vp               buffer rw  none  size=8 align=8 offset=104"
    "rin              buffer r   f32   size=8 align=8 offset=112"
    "vi               buffer rw  i32   size=8 align=8 offset=120"
    "kernel typedef_args entry="
    "target: isa 1, min device 1, features 0x1f")   # no barrier in the code
  string(FIND "${info}" "${want}" pos)
  if(pos EQUAL -1)
    message(FATAL_ERROR "metadata lacks '${want}':\n${info}")
  endif()
endforeach()
if(NOT info MATCHES "args_size=128 args_align=8")
  message(FATAL_ERROR "args block layout:\n${info}")
endif()
