// SPDX-License-Identifier: GPL-2.0-only
/*
 * Kiln: sharing device memory through dma-buf.
 *
 * Host BOs are exported by the shmem helpers. A DRAM BO is exported here
 * for peer-to-peer DMA: another Kiln device that imports it gets the BO's
 * range of this device's BAR2 (BAR2 offset X is DRAM offset X) as DMA
 * addresses, maps them into the importing context's page tables like host
 * pages, and its DMA engine reads and writes this device's DRAM across
 * PCIe. Only that range is reachable, so a context still reaches nothing
 * it was not given. The CPU never maps an exported DRAM BO through the
 * dma-buf (it has the BO's own mmap for that), and SRAM, which no BAR
 * covers, cannot be exported to another device. Within one device an
 * import gives back the BO itself, as for every GEM driver.
 */

#include <linux/dma-buf.h>
#include <linux/dma-mapping.h>
#include <linux/pci.h>
#include <linux/pci-p2pdma.h>
#include <linux/scatterlist.h>

#include <drm/drm_drv.h>
#include <drm/drm_prime.h>
#include <drm/drm_print.h>

#include "kiln_drv.h"
#include "kiln_gem.h"
#include "kiln_pm.h"
#include "kiln_prime.h"

static unsigned int kiln_p2p = 1;
module_param_named(p2p, kiln_p2p, uint, 0644);
MODULE_PARM_DESC(p2p,
		 "Peer DMA into a Kiln device's DRAM by other Kiln devices: 0 never, 1 where the PCI core's p2pdma allows it (default), 2 also through host bridges it does not know to route peer traffic (QEMU's q35)");

static int kiln_dram_dmabuf_attach(struct dma_buf *dmabuf,
				   struct dma_buf_attachment *attach)
{
	struct drm_gem_object *obj = dmabuf->priv;
	struct kiln_device *kdev = to_kiln_device(obj->dev);
	struct kiln_bo *bo = to_kiln_bo(obj);
	unsigned int policy = READ_ONCE(kiln_p2p);
	int distance;

	if (bo->placement != KILN_BO_DRAM) {
		drm_dbg(&kdev->drm, "dma-buf attach: only DRAM BOs reach other devices (no BAR covers SRAM)\n");
		return -EOPNOTSUPP;
	}
	if (attach->dev->driver != kdev->pdev->dev.driver) {
		drm_dbg(&kdev->drm, "dma-buf attach: %s is not a Kiln device; DRAM BOs are shared only between Kiln devices\n",
			dev_name(attach->dev));
		return -EOPNOTSUPP;
	}
	if (!policy) {
		drm_dbg(&kdev->drm, "dma-buf attach: peer DMA is off (kiln.p2p=0)\n");
		return -EOPNOTSUPP;
	}
	distance = pci_p2pdma_distance(kdev->pdev, attach->dev, false);
	if (distance < 0 && policy < 2) {
		drm_dbg(&kdev->drm, "dma-buf attach: the PCI core does not route peer DMA from %s (kiln.p2p=2 overrides)\n",
			dev_name(attach->dev));
		return -EOPNOTSUPP;
	}
	return 0;
}

/* Fails if a block lies beyond what BAR2 exposes (NO_MMAP BOs may). */
static int kiln_dram_fill_sgt(struct kiln_bo *bo, struct sg_table *sgt,
			      struct device *importer,
			      enum dma_data_direction dir)
{
	struct kiln_device *kdev = to_kiln_device(bo->shmem.base.dev);
	struct kiln_buddy_block *block;
	struct scatterlist *sg = sgt->sgl;

	list_for_each_entry(block, &bo->blocks, link) {
		u64 off = kiln_buddy_block_offset(block);
		u64 len = kiln_buddy_block_size(&kdev->dram.mm, block);
		dma_addr_t addr;

		if (off + len > kdev->dram_bar_size) {
			drm_dbg(&kdev->drm, "dma-buf map: DRAM at %#llx is beyond the %pa-byte BAR\n",
				off, &kdev->dram_bar_size);
			return -EOPNOTSUPP;
		}
		addr = dma_map_resource(importer, kdev->dram_bar_start + off,
					len, dir, DMA_ATTR_SKIP_CPU_SYNC);
		if (dma_mapping_error(importer, addr))
			return -EIO;
		sg_dma_address(sg) = addr;
		sg_dma_len(sg) = len;
		sgt->nents++;
		sg = sg_next(sg);
	}
	return 0;
}

static void kiln_dram_unmap_sgt(struct sg_table *sgt, struct device *importer,
				enum dma_data_direction dir)
{
	struct scatterlist *sg;
	unsigned int i;

	for_each_sgtable_dma_sg(sgt, sg, i)
		dma_unmap_resource(importer, sg_dma_address(sg),
				   sg_dma_len(sg), dir, DMA_ATTR_SKIP_CPU_SYNC);
}

static struct sg_table *
kiln_dram_dmabuf_map(struct dma_buf_attachment *attach,
		     enum dma_data_direction dir)
{
	struct kiln_bo *bo = to_kiln_bo(attach->dmabuf->priv);
	struct kiln_buddy_block *block;
	unsigned int nblocks = 0;
	struct sg_table *sgt;
	int ret;

	list_for_each_entry(block, &bo->blocks, link)
		nblocks++;

	sgt = kzalloc(sizeof(*sgt), GFP_KERNEL);
	if (!sgt)
		return ERR_PTR(-ENOMEM);
	/* The importer reaches the BO through BAR2, which is off in D3hot. */
	ret = kiln_pm_get(to_kiln_device(bo->shmem.base.dev));
	if (ret)
		goto err_free;
	/* DMA addresses only: there are no struct pages behind a BAR. */
	ret = sg_alloc_table(sgt, nblocks, GFP_KERNEL);
	if (ret)
		goto err_free;
	sgt->nents = 0;
	ret = kiln_dram_fill_sgt(bo, sgt, attach->dev, dir);
	if (ret) {
		kiln_dram_unmap_sgt(sgt, attach->dev, dir);
		sg_free_table(sgt);
		goto err_put;
	}
	return sgt;

err_put:
	kiln_pm_put(to_kiln_device(bo->shmem.base.dev));

err_free:
	kfree(sgt);
	return ERR_PTR(ret);
}

static void kiln_dram_dmabuf_unmap(struct dma_buf_attachment *attach,
				   struct sg_table *sgt,
				   enum dma_data_direction dir)
{
	struct kiln_bo *bo = to_kiln_bo(attach->dmabuf->priv);

	kiln_dram_unmap_sgt(sgt, attach->dev, dir);
	sg_free_table(sgt);
	kfree(sgt);
	kiln_pm_put(to_kiln_device(bo->shmem.base.dev));
}

static const struct dma_buf_ops kiln_dram_dmabuf_ops = {
	.attach = kiln_dram_dmabuf_attach,
	.map_dma_buf = kiln_dram_dmabuf_map,
	.unmap_dma_buf = kiln_dram_dmabuf_unmap,
	.release = drm_gem_dmabuf_release,
};

struct dma_buf *kiln_vram_bo_export(struct drm_gem_object *obj, int flags)
{
	DEFINE_DMA_BUF_EXPORT_INFO(exp_info);

	exp_info.ops = &kiln_dram_dmabuf_ops;
	exp_info.size = obj->size;
	exp_info.flags = flags;
	exp_info.priv = obj;
	exp_info.resv = obj->resv;
	return drm_gem_dmabuf_export(obj->dev, &exp_info);
}

struct drm_gem_object *kiln_gem_prime_import(struct drm_device *drm,
					     struct dma_buf *dmabuf)
{
	struct drm_gem_object *obj = dmabuf->priv;

	if (dmabuf->ops == &kiln_dram_dmabuf_ops && obj->dev == drm) {
		drm_gem_object_get(obj);
		return obj;
	}
	return drm_gem_prime_import(drm, dmabuf);
}
