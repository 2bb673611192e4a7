/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Kiln: dma-buf export of device memory for peer-to-peer DMA.
 */
#ifndef KILN_PRIME_H
#define KILN_PRIME_H

struct dma_buf;
struct drm_device;
struct drm_gem_object;

struct dma_buf *kiln_vram_bo_export(struct drm_gem_object *obj, int flags);
struct drm_gem_object *kiln_gem_prime_import(struct drm_device *drm,
					     struct dma_buf *dmabuf);

#endif /* KILN_PRIME_H */
