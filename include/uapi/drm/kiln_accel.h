/* SPDX-License-Identifier: MIT */
/*
 * Kiln K1 accelerator: user-space interface of the kiln DRM accel driver.
 * Documented in docs/uapi.md.
 *
 * Rules for every ioctl: fields named pad or reserved must be zero
 * (-EINVAL otherwise); unknown flag bits are -EINVAL; structs only grow at
 * the end (drm_ioctl zero-extends shorter structs from older user space);
 * ioctl numbers are never reused or reordered. Exhausted limits return
 * -ENOSPC (objects) or -E2BIG (array sizes), never -EINVAL.
 */
#ifndef _UAPI_KILN_ACCEL_H_
#define _UAPI_KILN_ACCEL_H_

#include "drm.h"

#if defined(__cplusplus)
extern "C" {
#endif

#define KILN_UAPI_VERSION_MAJOR		1
#define KILN_UAPI_VERSION_MINOR		4

/**
 * enum drm_kiln_ioctl - Kiln ioctl numbers, relative to DRM_COMMAND_BASE
 * @DRM_KILN_GET_PARAM: one scalar parameter, &struct drm_kiln_get_param
 * @DRM_KILN_QUERY_INFO: a structured query, &struct drm_kiln_query_info
 * @DRM_KILN_BO_CREATE: create a buffer object, &struct drm_kiln_bo_create
 * @DRM_KILN_BO_INFO: a BO's placement and mmap offset, &struct drm_kiln_bo_info
 * @DRM_KILN_BO_WAIT: wait for a BO to be idle, &struct drm_kiln_bo_wait
 * @DRM_KILN_CTX_CREATE: create a context, &struct drm_kiln_ctx_create
 * @DRM_KILN_CTX_DESTROY: destroy a context, &struct drm_kiln_ctx_destroy
 * @DRM_KILN_SUBMIT: submit a command buffer, &struct drm_kiln_submit
 * @DRM_KILN_CTX_STATUS: a context's state, &struct drm_kiln_ctx_status
 * @DRM_KILN_JOB_STATUS: one job's outcome, &struct drm_kiln_job_status
 *
 * Numbers are never reused or reordered; see docs/uapi.md for each ioctl.
 */
enum drm_kiln_ioctl {
	DRM_KILN_GET_PARAM	= 0x00,
	DRM_KILN_QUERY_INFO	= 0x01,
	DRM_KILN_BO_CREATE	= 0x02,
	DRM_KILN_BO_INFO	= 0x03,
	DRM_KILN_BO_WAIT	= 0x04,
	DRM_KILN_CTX_CREATE	= 0x05,
	DRM_KILN_CTX_DESTROY	= 0x06,
	DRM_KILN_SUBMIT		= 0x07,
	DRM_KILN_CTX_STATUS	= 0x08,
	DRM_KILN_JOB_STATUS	= 0x09,
};

/* Parameters for DRM_KILN_GET_PARAM */
/**
 * enum drm_kiln_param - scalar device and driver parameters for
 * &DRM_IOCTL_KILN_GET_PARAM
 *
 * @DRM_KILN_PARAM_DEVICE_ID: PCI device id
 * @DRM_KILN_PARAM_REVISION: PCI revision
 * @DRM_KILN_PARAM_FW_VERSION: device firmware version, KILN_VERSION() encoding
 * @DRM_KILN_PARAM_IFACE_VERSION: hardware interface version, KILN_VERSION()
 * @DRM_KILN_PARAM_NUM_QUEUES: hardware queues, the management queue included
 * @DRM_KILN_PARAM_PE_GRID: PE grid, width | height << 8
 * @DRM_KILN_PARAM_LOCAL_MEM_SIZE: bytes of local memory per PE
 * @DRM_KILN_PARAM_DRAM_SIZE: bytes of device DRAM the driver manages
 * @DRM_KILN_PARAM_DRAM_FREE: bytes of DRAM not allocated to BOs
 * @DRM_KILN_PARAM_SRAM_SIZE: bytes of on-chip SRAM the driver manages
 * @DRM_KILN_PARAM_SRAM_FREE: bytes of SRAM not allocated to BOs
 * @DRM_KILN_PARAM_VA_START: first device virtual address handed out
 * @DRM_KILN_PARAM_VA_END: one past the last device virtual address
 * @DRM_KILN_PARAM_MAX_CONTEXTS: contexts the device can hold
 * @DRM_KILN_PARAM_CONTEXTS_IN_USE: contexts alive on the device
 * @DRM_KILN_PARAM_FEATURES: KILN_FEATURE_* bits of the device
 * @DRM_KILN_PARAM_JOB_TIMEOUT_MS: default job timeout, milliseconds
 * @DRM_KILN_PARAM_RESET_COUNT: device resets done by the driver since probe
 * @DRM_KILN_PARAM_CLOCK_MHZ: modelled PE clock, MHz
 * @DRM_KILN_PARAM_MAX_SUBMIT_BOS: most BO references one SUBMIT may carry
 * @DRM_KILN_PARAM_MAX_SUBMIT_SYNCS: most syncobj entries one SUBMIT may carry
 * @DRM_KILN_PARAM_MAX_CMD_SIZE: largest command buffer, bytes
 * @DRM_KILN_PARAM_UAPI_VERSION: this interface's version, major << 16 | minor
 * @DRM_KILN_PARAM_BO_COUNT: live BOs on the device, all files
 * @DRM_KILN_PARAM_HOST_BO_BYTES: bytes of host-memory BOs created (not imports)
 * @DRM_KILN_PARAM_MAX_FILES: open files (address spaces) per device
 * @DRM_KILN_PARAM_FILES_IN_USE: open files on the device
 * @DRM_KILN_PARAM_MAX_QUEUED_JOBS: jobs per context submitted and not
 *	completed; past it SUBMIT fails with -EBUSY
 * @DRM_KILN_PARAM_HOST_MEM_LIMIT: bytes of host BOs all Kiln devices together
 *	may pin; past it BO_CREATE fails with -ENOSPC
 * @DRM_KILN_PARAM_MAX_WATCHDOG_MCYCLES: cap on a LAUNCH's watchdog in this
 *	file's contexts, million cycles (0: no cap)
 * @DRM_KILN_PARAM_MAX_HOST_BOS: host BOs all Kiln devices together may hold;
 *	past it BO_CREATE fails with -ENOSPC
 * @DRM_KILN_PARAM_MAX_FILE_JOBS: jobs one file may have submitted and not yet
 *	finished; past it SUBMIT fails with -EBUSY
 * @DRM_KILN_PARAM_MAX_FILE_CONTEXTS: contexts one file may hold; past it
 *	CTX_CREATE fails with -ENOSPC
 * @DRM_KILN_PARAM_NUM_PARAMS: number of parameters, not a parameter
 *
 * Units are also given in docs/uapi.md. New parameters are only added at
 * the end.
 */
enum drm_kiln_param {
	DRM_KILN_PARAM_DEVICE_ID	= 0,	/* PCI device id */
	DRM_KILN_PARAM_REVISION		= 1,
	DRM_KILN_PARAM_FW_VERSION	= 2,	/* KILN_VERSION() encoding */
	DRM_KILN_PARAM_IFACE_VERSION	= 3,	/* hardware interface version */
	DRM_KILN_PARAM_NUM_QUEUES	= 4,
	DRM_KILN_PARAM_PE_GRID		= 5,	/* width | height << 8 */
	DRM_KILN_PARAM_LOCAL_MEM_SIZE	= 6,	/* bytes per PE */
	DRM_KILN_PARAM_DRAM_SIZE	= 7,	/* bytes */
	DRM_KILN_PARAM_DRAM_FREE	= 8,	/* bytes not allocated */
	DRM_KILN_PARAM_SRAM_SIZE	= 9,
	DRM_KILN_PARAM_SRAM_FREE	= 10,
	DRM_KILN_PARAM_VA_START		= 11,	/* first device VA handed out */
	DRM_KILN_PARAM_VA_END		= 12,	/* one past the last */
	DRM_KILN_PARAM_MAX_CONTEXTS	= 13,	/* per device */
	DRM_KILN_PARAM_CONTEXTS_IN_USE	= 14,
	DRM_KILN_PARAM_FEATURES		= 15,	/* KILN_FEATURE_* of the device */
	DRM_KILN_PARAM_JOB_TIMEOUT_MS	= 16,	/* default job timeout */
	DRM_KILN_PARAM_RESET_COUNT	= 17,	/* device resets since probe */
	DRM_KILN_PARAM_CLOCK_MHZ	= 18,
	DRM_KILN_PARAM_MAX_SUBMIT_BOS	= 19,
	DRM_KILN_PARAM_MAX_SUBMIT_SYNCS	= 20,
	DRM_KILN_PARAM_MAX_CMD_SIZE	= 21,	/* bytes per command buffer */
	DRM_KILN_PARAM_UAPI_VERSION	= 22,	/* major << 16 | minor */
	DRM_KILN_PARAM_BO_COUNT		= 23,	/* live BOs on the device (all files) */
	DRM_KILN_PARAM_HOST_BO_BYTES	= 24,	/* bytes of host-memory BOs created */
	DRM_KILN_PARAM_MAX_FILES	= 25,	/* open files (address spaces) per device */
	DRM_KILN_PARAM_FILES_IN_USE	= 26,
	/* jobs per context submitted and not completed; SUBMIT: -EBUSY */
	DRM_KILN_PARAM_MAX_QUEUED_JOBS	= 27,
	/* bytes of host BOs all Kiln devices together may pin; BO_CREATE: -ENOSPC */
	DRM_KILN_PARAM_HOST_MEM_LIMIT	= 28,
	/* cap on a LAUNCH's watchdog in this file's contexts (M cycles, 0: none) */
	DRM_KILN_PARAM_MAX_WATCHDOG_MCYCLES = 29,
	/* host BOs all Kiln devices together may hold; BO_CREATE: -ENOSPC */
	DRM_KILN_PARAM_MAX_HOST_BOS	= 30,
	/* jobs one file may have submitted and not yet finished; SUBMIT: -EBUSY */
	DRM_KILN_PARAM_MAX_FILE_JOBS	= 31,
	/* contexts one file may hold; CTX_CREATE: -ENOSPC */
	DRM_KILN_PARAM_MAX_FILE_CONTEXTS = 32,
	DRM_KILN_PARAM_NUM_PARAMS
};

/**
 * struct drm_kiln_get_param - argument of &DRM_IOCTL_KILN_GET_PARAM
 * @param: in, an &enum drm_kiln_param; unknown values are -EINVAL
 * @index: in, must be zero
 * @value: out, the parameter's value
 */
struct drm_kiln_get_param {
	__u32 param;		/* in: enum drm_kiln_param */
	__u32 index;		/* in: must be zero */
	__u64 value;		/* out */
};

/* DRM_KILN_QUERY_INFO: size-negotiated structured queries */
/**
 * enum drm_kiln_query - structured queries of &DRM_IOCTL_KILN_QUERY_INFO
 * @DRM_KILN_QUERY_DEVICE: &struct drm_kiln_device_info. Deprecated: every
 *	field is a GET_PARAM parameter, which is the one way to read scalars.
 *	Kept, frozen, for existing user space.
 * @DRM_KILN_QUERY_TELEMETRY: &struct drm_kiln_telemetry, the device's
 *	telemetry registers as one snapshot (hwmon has three of them, one
 *	file each)
 */
enum drm_kiln_query {
	DRM_KILN_QUERY_DEVICE		= 0,	/* struct drm_kiln_device_info */
	DRM_KILN_QUERY_TELEMETRY	= 1,	/* struct drm_kiln_telemetry */
};

/**
 * struct drm_kiln_query_info - argument of &DRM_IOCTL_KILN_QUERY_INFO
 * @type: in, an &enum drm_kiln_query
 * @size: in, bytes at @ptr; out, bytes the kernel knows for @type. A shorter
 *	buffer gets a prefix, a longer one is zero-filled past the kernel's size.
 * @ptr: in, user pointer to the result, or 0 to ask for the size only
 */
struct drm_kiln_query_info {
	__u32 type;		/* in: enum drm_kiln_query */
	__u32 size;		/* in: size of *ptr; out: bytes the kernel knows */
	__u64 ptr;		/* in: user pointer, or 0 to ask for the size */
};

/**
 * struct drm_kiln_device_info - &DRM_KILN_QUERY_DEVICE (deprecated): identity,
 * geometry and limits of the device in one call (the same values as the
 * GET_PARAM parameters of the same names); never grows
 * @device_id: PCI device id
 * @revision: PCI revision
 * @fw_version: device firmware version, KILN_VERSION() encoding
 * @iface_version: hardware interface version, KILN_VERSION() encoding
 * @num_queues: hardware queues, the management queue included
 * @pe_grid_width: PE columns
 * @pe_grid_height: PE rows
 * @local_mem_size: bytes of local memory per PE
 * @dram_size: bytes of device DRAM the driver manages
 * @dram_free: bytes of DRAM not allocated to BOs
 * @sram_size: bytes of on-chip SRAM the driver manages
 * @sram_free: bytes of SRAM not allocated to BOs
 * @va_start: first device virtual address handed out
 * @va_end: one past the last device virtual address
 * @max_contexts: contexts the device can hold
 * @contexts_in_use: contexts alive on the device
 * @features: KILN_FEATURE_* bits of the device
 * @job_timeout_ms: default job timeout, milliseconds
 * @reset_count: device resets done by the driver since probe
 * @clock_mhz: modelled PE clock, MHz
 */
struct drm_kiln_device_info {
	__u32 device_id;
	__u32 revision;
	__u32 fw_version;
	__u32 iface_version;
	__u32 num_queues;
	__u32 pe_grid_width;
	__u32 pe_grid_height;
	__u32 local_mem_size;
	__u64 dram_size;
	__u64 dram_free;
	__u64 sram_size;
	__u64 sram_free;
	__u64 va_start;
	__u64 va_end;
	__u32 max_contexts;
	__u32 contexts_in_use;
	__u32 features;
	__u32 job_timeout_ms;
	__u32 reset_count;
	__u32 clock_mhz;
};

/**
 * struct drm_kiln_telemetry - &DRM_KILN_QUERY_TELEMETRY: the device's
 * telemetry registers (docs/hardware.md), read together
 * @temperature_mc: temperature, millidegree Celsius
 * @power_mw: modelled power of the work since the previous read, milliwatt
 * @pe_clock_mhz: modelled PE clock, MHz
 * @mem_clock_mhz: modelled memory clock, MHz
 * @busy_ns: emulator time the device spent running work, nanoseconds
 * @dma_bytes: bytes moved by the DMA engines
 * @packets: command packets executed
 * @launches: kernel launches executed
 * @device_time_ns: modelled time of all work, nanoseconds
 * @total_cycles: modelled cycles of all work
 * @energy_uj: modelled energy since power-on, microjoule (minor 3)
 */
struct drm_kiln_telemetry {
	__u32 temperature_mc;	/* millidegree Celsius */
	__u32 power_mw;
	__u32 pe_clock_mhz;
	__u32 mem_clock_mhz;
	__u64 busy_ns;
	__u64 dma_bytes;
	__u64 packets;
	__u64 launches;
	__u64 device_time_ns;
	__u64 total_cycles;
	__u64 energy_uj;	/* modelled energy since power-on (minor 3) */
};

/* DRM_KILN_BO_CREATE */
#define DRM_KILN_BO_DRAM	(1u << 0)	/* device DRAM (default: host memory) */
#define DRM_KILN_BO_SRAM	(1u << 1)	/* on-chip SRAM */
#define DRM_KILN_BO_NO_MMAP	(1u << 2)	/* never CPU-mapped */
#define DRM_KILN_BO_WC		(1u << 3)	/* host BO: write-combined CPU mapping */
#define DRM_KILN_BO_EXEC	(1u << 4)	/* device mapping executable (kernel code) */
#define DRM_KILN_BO_READ_ONLY	(1u << 5)	/* device mapping read-only */
#define DRM_KILN_BO_FLAGS	(DRM_KILN_BO_DRAM | DRM_KILN_BO_SRAM | \
				 DRM_KILN_BO_NO_MMAP | DRM_KILN_BO_WC | \
				 DRM_KILN_BO_EXEC | DRM_KILN_BO_READ_ONLY)

/**
 * struct drm_kiln_bo_create - argument of &DRM_IOCTL_KILN_BO_CREATE
 * @size: in, bytes (> 0); out, rounded up to 4 KiB
 * @flags: in, DRM_KILN_BO_*; out, the flags in effect (SRAM adds NO_MMAP)
 * @handle: out, GEM handle (in: must be zero)
 * @va: out, device virtual address in this file's address space (in: zero)
 *
 * Creates a buffer object and maps it into the file's device address
 * space; 2 MiB-aligned DRAM BOs of 2 MiB multiples are mapped with large
 * pages. A new BO is always zeroed, whatever its placement.
 */
struct drm_kiln_bo_create {
	__u64 size;		/* in; out: rounded size */
	__u32 flags;		/* in: DRM_KILN_BO_* */
	__u32 handle;		/* out */
	__u64 va;		/* out: device virtual address in this file */
};

/**
 * struct drm_kiln_bo_info - argument of &DRM_IOCTL_KILN_BO_INFO, also for a
 * BO imported through PRIME (importing maps it into this file's address space)
 * @handle: in, a GEM handle of this file (created or imported)
 * @flags: out, DRM_KILN_BO_*
 * @size: out, bytes
 * @va: out, device virtual address in this file's address space
 * @mmap_offset: out, offset for mmap() on the device fd; 0 for NO_MMAP BOs
 */
struct drm_kiln_bo_info {
	__u32 handle;		/* in */
	__u32 flags;		/* out: DRM_KILN_BO_* */
	__u64 size;		/* out */
	__u64 va;		/* out */
	__u64 mmap_offset;	/* out: for mmap() on the device fd; 0 if NO_MMAP */
};

/**
 * struct drm_kiln_bo_wait - argument of &DRM_IOCTL_KILN_BO_WAIT: waits until
 * every job using the BO finished, or the absolute timeout passes
 * @handle: in, a GEM handle of this file
 * @pad: must be zero
 * @timeout_ns: in, absolute CLOCK_MONOTONIC deadline; -ETIME when reached
 */
struct drm_kiln_bo_wait {
	__u32 handle;
	__u32 pad;
	__s64 timeout_ns;	/* absolute CLOCK_MONOTONIC; -ETIME when reached */
};

/* DRM_KILN_CTX_CREATE */
/**
 * enum drm_kiln_priority - context priorities, mapped to hardware queues
 * @DRM_KILN_PRIORITY_LOW: background work
 * @DRM_KILN_PRIORITY_NORMAL: the default
 * @DRM_KILN_PRIORITY_HIGH: latency-sensitive work
 * @DRM_KILN_PRIORITY_REALTIME: needs CAP_SYS_NICE
 */
enum drm_kiln_priority {
	DRM_KILN_PRIORITY_LOW		= 0,
	DRM_KILN_PRIORITY_NORMAL	= 1,
	DRM_KILN_PRIORITY_HIGH		= 2,
	DRM_KILN_PRIORITY_REALTIME	= 3,	/* needs CAP_SYS_NICE */
};

/**
 * struct drm_kiln_ctx_create - argument of &DRM_IOCTL_KILN_CTX_CREATE
 * @priority: in, an &enum drm_kiln_priority
 * @flags: in, must be zero
 * @timeout_ms: in, no-progress time before a job is hung; 0: the default
 * @ctx_id: out, non-zero (in: must be zero)
 * @status_offset: out (minor 4; in: must be zero), mmap() offset on the
 *	device fd of the context's job-status ring: @status_size bytes of
 *	&struct drm_kiln_job_record, @status_stride bytes apart, the record of
 *	job @seqno at index @seqno % (@status_size / @status_stride). The
 *	mapping is read-only (PROT_WRITE or PROT_EXEC: -EPERM) and shows the
 *	jobs of this context only.
 * @status_size: out (minor 4; in: must be zero), bytes of the ring
 * @status_stride: out (minor 4; in: must be zero), bytes per record; the
 *	record only grows at its end
 * @pad: must be zero
 * @pad2: must be zero
 */
struct drm_kiln_ctx_create {
	__u32 priority;		/* in: enum drm_kiln_priority */
	__u32 flags;		/* in: must be zero */
	__u32 timeout_ms;	/* in: job timeout, 0 = driver default */
	__u32 ctx_id;		/* out: non-zero */
	__u64 status_offset;	/* out: mmap offset of the job-status ring */
	__u32 status_size;	/* out: bytes of the ring */
	__u32 status_stride;	/* out: bytes per struct drm_kiln_job_record */
	__u32 pad;
	__u32 pad2;
};

/**
 * struct drm_kiln_ctx_destroy - argument of &DRM_IOCTL_KILN_CTX_DESTROY
 * @ctx_id: in, a context of this file; its unfinished jobs are cancelled
 * @pad: must be zero
 */
struct drm_kiln_ctx_destroy {
	__u32 ctx_id;
	__u32 pad;
};

/* Array of structs in user memory; stride lets the element grow. */
/**
 * struct drm_kiln_array - an array of structs in user memory
 * @ptr: user pointer to the first element
 * @count: number of elements
 * @stride: sizeof(element) as user space knows it; a longer element must
 *	have a zero tail, a shorter one is zero-extended
 */
struct drm_kiln_array {
	__u64 ptr;
	__u32 count;
	__u32 stride;		/* sizeof(element) as user space knows it */
};

#define DRM_KILN_SYNC_WAIT	(1u << 0)	/* in-sync: job waits for it */
#define DRM_KILN_SYNC_SIGNAL	(1u << 1)	/* out-sync: signalled when the job ends */

/* A syncobj; point != 0 selects a timeline point. */
/**
 * struct drm_kiln_sync - a syncobj a job waits for and/or signals
 * @handle: syncobj handle of this file
 * @flags: DRM_KILN_SYNC_WAIT and/or DRM_KILN_SYNC_SIGNAL, at least one
 * @point: timeline point, or 0 for a binary syncobj
 */
struct drm_kiln_sync {
	__u32 handle;
	__u32 flags;
	__u64 point;
};

#define DRM_KILN_BO_REF_WRITE	(1u << 0)	/* job writes the BO (implicit sync) */

/**
 * struct drm_kiln_bo_ref - a BO a job's command buffer uses
 * @handle: GEM handle of this file
 * @flags: DRM_KILN_BO_REF_WRITE if the job writes it (implicit sync)
 */
struct drm_kiln_bo_ref {
	__u32 handle;
	__u32 flags;		/* DRM_KILN_BO_REF_* */
};

/*
 * The job may be run again from its start if a device reset interrupts
 * it (it does not read what it writes). Without the flag, a job that was
 * running when the device was reset ends with KILN_STATUS_INTERRUPTED
 * and fence error -EAGAIN instead of being re-run.
 */
#define DRM_KILN_SUBMIT_REPLAYABLE	(1u << 0)
#define DRM_KILN_SUBMIT_FLAGS		DRM_KILN_SUBMIT_REPLAYABLE

/**
 * struct drm_kiln_submit - argument of &DRM_IOCTL_KILN_SUBMIT
 * @ctx_id: in, the context to run on
 * @flags: in, DRM_KILN_SUBMIT_*
 * @cmd_va: in, device VA of the command buffer, 64-byte aligned
 * @cmd_size: in, bytes of packets, a multiple of 64, at most 4 MiB
 * @pad: must be zero
 * @bos: in, &struct drm_kiln_bo_ref of every BO the job uses
 * @syncs: in, &struct drm_kiln_sync to wait for and signal
 * @seqno: out, the job's number in its context (in: must be zero)
 *
 * Runs the command buffer (packets of docs/hardware.md) on the context's
 * queue. Every BO the command buffer touches must be listed in @bos. A full
 * hardware queue does not fail the call (the job waits in the scheduler),
 * but a context with DRM_KILN_PARAM_MAX_QUEUED_JOBS jobs submitted and not
 * yet completed, or a file with DRM_KILN_PARAM_MAX_FILE_JOBS, gets -EBUSY:
 * wait for its oldest job, then submit again. A context being destroyed
 * gets -ENOENT.
 */
struct drm_kiln_submit {
	__u32 ctx_id;
	__u32 flags;		/* DRM_KILN_SUBMIT_* */
	__u64 cmd_va;		/* 64-byte aligned, inside a listed BO */
	__u32 cmd_size;		/* multiple of 64 */
	__u32 pad;
	struct drm_kiln_array bos;	/* struct drm_kiln_bo_ref */
	struct drm_kiln_array syncs;	/* struct drm_kiln_sync */
	__u64 seqno;		/* out: per-context job number, from 1 */
};

#define DRM_KILN_CTX_BANNED	(1u << 0)

/* State of a context: banned after a hang, and its last error. */
/**
 * struct drm_kiln_ctx_status - argument of &DRM_IOCTL_KILN_CTX_STATUS
 * @ctx_id: in, the context
 * @flags: out, DRM_KILN_CTX_* (DRM_KILN_CTX_BANNED after a hang)
 * @submitted: out, seqno of the last job submitted
 * @completed: out, seqno of the last job completed
 * @error_seqno: out, the job of the last error, 0 if none
 * @error_status: out, that job's &enum kiln_status
 * @fault_access: out, KILN_ACCESS_* of its last MMU fault
 * @fault_addr: out, device virtual address of its last MMU fault
 * @fault_reason: out, KILN_MMU_FAULT_* of its last MMU fault
 * @reset_count: out, device resets that hit this context
 */
struct drm_kiln_ctx_status {
	__u32 ctx_id;		/* in */
	__u32 flags;		/* out: DRM_KILN_CTX_* */
	__u64 submitted;	/* out: last seqno submitted */
	__u64 completed;	/* out: last seqno completed */
	__u64 error_seqno;	/* out: job of the last error, 0 if none */
	__u32 error_status;	/* out: enum kiln_status of that job */
	__u32 fault_access;	/* out: KILN_ACCESS_* */
	__u64 fault_addr;	/* out */
	__u32 fault_reason;	/* out */
	__u32 reset_count;	/* out: device resets that hit this context */
};

/**
 * enum drm_kiln_job_state - what &DRM_IOCTL_KILN_JOB_STATUS knows of a job
 * @DRM_KILN_JOB_PENDING: not finished
 * @DRM_KILN_JOB_DONE: finished; the status fields are valid
 * @DRM_KILN_JOB_EXPIRED: more than 256 jobs ago, record no longer kept
 */
enum drm_kiln_job_state {
	DRM_KILN_JOB_PENDING	= 0,
	DRM_KILN_JOB_DONE	= 1,
	DRM_KILN_JOB_EXPIRED	= 2,	/* too old, record no longer kept */
};

/* Outcome of one job; the driver keeps the most recent 256 per context. */
/**
 * struct drm_kiln_job_status - argument of &DRM_IOCTL_KILN_JOB_STATUS
 * @ctx_id: in, the context
 * @pad: must be zero
 * @seqno: in, the job, as SUBMIT returned it
 * @state: out, &enum drm_kiln_job_state
 * @status: out, &enum kiln_status of the job (valid when DONE)
 * @packet_index: out, the failing packet's index in the command buffer
 * @pe: out, the failing PE, ~0 if none
 * @pc: out, the failing PE's program counter
 * @fault_addr: out, the faulting address (or the status's detail word)
 * @fault_access: out, KILN_ACCESS_* of an MMU fault
 * @fault_reason: out, KILN_MMU_FAULT_* of an MMU fault
 * @cycles: out, modelled cycles of the job (its device time)
 * @elapsed_ns: out, emulator (QEMU virtual) time of the job
 * @error: out, the fence error: 0, -EIO, -ETIMEDOUT, -ECANCELED or -EAGAIN
 * @pad2: must be zero
 * @energy_pj: out, modelled energy of the job, picojoule (minor 3)
 */
struct drm_kiln_job_status {
	__u32 ctx_id;		/* in */
	__u32 pad;
	__u64 seqno;		/* in */
	__u32 state;		/* out: enum drm_kiln_job_state */
	__u32 status;		/* out: enum kiln_status */
	__u32 packet_index;	/* out: failing packet in the command buffer */
	__u32 pe;		/* out: failing PE, ~0 if none */
	__u64 pc;		/* out */
	__u64 fault_addr;	/* out */
	__u32 fault_access;	/* out */
	__u32 fault_reason;	/* out */
	__u64 cycles;		/* out: modelled cycles (the device time) */
	__u64 elapsed_ns;	/* out: emulator (QEMU virtual) time */
	__s32 error;		/* out: fence error (0, -EIO, -ETIMEDOUT, -ECANCELED, -EAGAIN) */
	__u32 pad2;
	__u64 energy_pj;	/* out: modelled energy (minor 3) */
};

/**
 * struct drm_kiln_job_record - outcome of one job in a context's job-status
 * ring, the read-only mapping at &drm_kiln_ctx_create.status_offset
 * @seqno: the job this record is about; the driver writes it before the
 *	other fields when it reuses the record for a newer job
 * @state: an &enum drm_kiln_job_state, PENDING until the job finished;
 *	DONE is written last, after every other field
 * @status: &enum kiln_status of the job, valid when DONE
 * @packet_index: failing packet in the command buffer
 * @pe: failing PE, ~0 if none
 * @pc: the failing PE's program counter
 * @fault_addr: faulting address (its meaning depends on @status)
 * @fault_access: KILN_ACCESS_* of the fault
 * @fault_reason: &enum kiln_mmu_fault_reason, or the RISC-V cause
 * @cycles: modelled cycles of the job (its device time)
 * @elapsed_ns: emulator (QEMU virtual) time of the job
 * @error: fence error of the job (0, -EIO, -ETIMEDOUT, -ECANCELED, -EAGAIN,
 *	-ENODEV)
 * @pad: zero
 * @energy_pj: modelled energy of the job
 *
 * The driver fills the record of job N when N completes and reuses it
 * for job N + ring size, which cannot be submitted before N completed
 * (DRM_KILN_PARAM_MAX_QUEUED_JOBS equals the ring's record count). A
 * reader that has seen job N's fence signal reads @seqno, then the
 * fields, then @seqno again: equal to N both times with @state DONE, the
 * fields are N's. Otherwise the record was reused (read it with
 * &DRM_IOCTL_KILN_JOB_STATUS, which reports it EXPIRED).
 */
struct drm_kiln_job_record {
	__u64 seqno;
	__u32 state;
	__u32 status;
	__u32 packet_index;
	__u32 pe;
	__u64 pc;
	__u64 fault_addr;
	__u32 fault_access;
	__u32 fault_reason;
	__u64 cycles;
	__u64 elapsed_ns;
	__s32 error;
	__u32 pad;
	__u64 energy_pj;
};

#define DRM_IOCTL_KILN(dir, name, type) \
	DRM_IO##dir(DRM_COMMAND_BASE + DRM_KILN_##name, struct drm_kiln_##type)

#define DRM_IOCTL_KILN_GET_PARAM	DRM_IOCTL_KILN(WR, GET_PARAM, get_param)
#define DRM_IOCTL_KILN_QUERY_INFO	DRM_IOCTL_KILN(WR, QUERY_INFO, query_info)
#define DRM_IOCTL_KILN_BO_CREATE	DRM_IOCTL_KILN(WR, BO_CREATE, bo_create)
#define DRM_IOCTL_KILN_BO_INFO		DRM_IOCTL_KILN(WR, BO_INFO, bo_info)
#define DRM_IOCTL_KILN_BO_WAIT		DRM_IOCTL_KILN(W, BO_WAIT, bo_wait)
#define DRM_IOCTL_KILN_CTX_CREATE	DRM_IOCTL_KILN(WR, CTX_CREATE, ctx_create)
#define DRM_IOCTL_KILN_CTX_DESTROY	DRM_IOCTL_KILN(W, CTX_DESTROY, ctx_destroy)
#define DRM_IOCTL_KILN_SUBMIT		DRM_IOCTL_KILN(WR, SUBMIT, submit)
#define DRM_IOCTL_KILN_CTX_STATUS	DRM_IOCTL_KILN(WR, CTX_STATUS, ctx_status)
#define DRM_IOCTL_KILN_JOB_STATUS	DRM_IOCTL_KILN(WR, JOB_STATUS, job_status)

#if defined(__cplusplus)
}
#endif

#endif /* _UAPI_KILN_ACCEL_H_ */
