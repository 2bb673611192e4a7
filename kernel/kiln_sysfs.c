// SPDX-License-Identifier: GPL-2.0-only
/*
 * Kiln: sysfs and hwmon.
 *
 * hwmon (temp1_input, power1_input, energy1_input) comes from the device's
 * telemetry registers; the "kiln" attribute group on the PCI device adds
 * the driver's counters. The ABI is in kernel/ABI/sysfs-driver-kiln.
 */

#include <linux/device.h>
#include <linux/hwmon.h>
#include <linux/sysfs.h>

#include <drm/drm_drv.h>

#include "kiln_drv.h"
#include "kiln_pm.h"
#include "kiln_sysfs.h"
#include "kiln_vram.h"

static umode_t kiln_hwmon_is_visible(const void *data,
				     enum hwmon_sensor_types type, u32 attr,
				     int channel)
{
	const struct kiln_device *kdev = data;

	if (!(kdev->features & KILN_FEATURE_TELEMETRY))
		return 0;
	if (type == hwmon_temp && attr == hwmon_temp_input)
		return 0444;
	if (type == hwmon_power && attr == hwmon_power_input)
		return 0444;
	if (type == hwmon_energy && attr == hwmon_energy_input)
		return 0444;
	return 0;
}

static int kiln_hwmon_read(struct device *dev, enum hwmon_sensor_types type,
			   u32 attr, int channel, long *val)
{
	struct kiln_device *kdev = dev_get_drvdata(dev);
	int idx;

	int ret;

	if (!drm_dev_enter(&kdev->drm, &idx))
		return -ENODEV;
	ret = kiln_pm_get(kdev);
	if (ret) {
		drm_dev_exit(idx);
		return ret;
	}
	if (type == hwmon_temp)
		*val = kiln_rd32(kdev, KILN_REG_TEMP_MC);
	else if (type == hwmon_energy)
		*val = (long)kiln_rd64(kdev, KILN_REG_ENERGY_UJ);
	else
		*val = (long)kiln_rd32(kdev, KILN_REG_POWER_MW) * 1000;
	kiln_pm_put(kdev);
	drm_dev_exit(idx);
	return 0;
}

static const struct hwmon_ops kiln_hwmon_ops = {
	.is_visible = kiln_hwmon_is_visible,
	.read = kiln_hwmon_read,
};

static const struct hwmon_channel_info *const kiln_hwmon_info[] = {
	HWMON_CHANNEL_INFO(temp, HWMON_T_INPUT),
	HWMON_CHANNEL_INFO(power, HWMON_P_INPUT),
	HWMON_CHANNEL_INFO(energy, HWMON_E_INPUT),
	NULL
};

static const struct hwmon_chip_info kiln_hwmon_chip = {
	.ops = &kiln_hwmon_ops,
	.info = kiln_hwmon_info,
};

static struct kiln_device *kiln_attr_kdev(struct device *dev)
{
	return pci_get_drvdata(to_pci_dev(dev));
}

static ssize_t reset_count_show(struct device *dev,
				struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%d\n",
			  atomic_read(&kiln_attr_kdev(dev)->reset_count));
}
static DEVICE_ATTR_RO(reset_count);

static ssize_t busy_time_us_show(struct device *dev,
				 struct device_attribute *attr, char *buf)
{
	struct kiln_device *kdev = kiln_attr_kdev(dev);
	u64 ns = 0;
	int idx;

	if (!drm_dev_enter(&kdev->drm, &idx))
		return -ENODEV;
	if ((kdev->features & KILN_FEATURE_TELEMETRY) && !kiln_pm_get(kdev)) {
		ns = kiln_rd64(kdev, KILN_REG_BUSY_NS);
		kiln_pm_put(kdev);
	}
	drm_dev_exit(idx);
	return sysfs_emit(buf, "%llu\n", div_u64(ns, 1000));
}
static DEVICE_ATTR_RO(busy_time_us);

static ssize_t dram_total_bytes_show(struct device *dev,
				     struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%llu\n", kiln_attr_kdev(dev)->dram.size);
}
static DEVICE_ATTR_RO(dram_total_bytes);

static ssize_t dram_used_bytes_show(struct device *dev,
				    struct device_attribute *attr, char *buf)
{
	struct kiln_vram *vram = &kiln_attr_kdev(dev)->dram;

	return sysfs_emit(buf, "%llu\n", vram->size - kiln_vram_free_bytes(vram));
}
static DEVICE_ATTR_RO(dram_used_bytes);

static ssize_t sram_used_bytes_show(struct device *dev,
				    struct device_attribute *attr, char *buf)
{
	struct kiln_vram *vram = &kiln_attr_kdev(dev)->sram;

	return sysfs_emit(buf, "%llu\n", vram->size - kiln_vram_free_bytes(vram));
}
static DEVICE_ATTR_RO(sram_used_bytes);

static ssize_t host_bo_bytes_show(struct device *dev,
				  struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%lld\n",
			  atomic64_read(&kiln_attr_kdev(dev)->host_bytes));
}
static DEVICE_ATTR_RO(host_bo_bytes);

static ssize_t contexts_show(struct device *dev,
			     struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%d\n",
			  atomic_read(&kiln_attr_kdev(dev)->ctx_count));
}
static DEVICE_ATTR_RO(contexts);

static ssize_t mmu_faults_show(struct device *dev,
			       struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%d\n",
			  atomic_read(&kiln_attr_kdev(dev)->mmu_faults));
}
static DEVICE_ATTR_RO(mmu_faults);

static ssize_t fw_version_show(struct device *dev,
			       struct device_attribute *attr, char *buf)
{
	u32 v = kiln_attr_kdev(dev)->fw_version;

	return sysfs_emit(buf, "%u.%u.%u\n", KILN_VERSION_MAJOR(v),
			  KILN_VERSION_MINOR(v), KILN_VERSION_PATCH(v));
}
static DEVICE_ATTR_RO(fw_version);

static struct attribute *kiln_attrs[] = {
	&dev_attr_reset_count.attr,
	&dev_attr_busy_time_us.attr,
	&dev_attr_dram_total_bytes.attr,
	&dev_attr_dram_used_bytes.attr,
	&dev_attr_sram_used_bytes.attr,
	&dev_attr_host_bo_bytes.attr,
	&dev_attr_contexts.attr,
	&dev_attr_mmu_faults.attr,
	&dev_attr_fw_version.attr,
	NULL
};

static const struct attribute_group kiln_attr_group = {
	.name = "kiln",
	.attrs = kiln_attrs,
};

/*
 * The driver core adds these after probe and removes them before remove,
 * so a reader never sees a half-initialised or departing device.
 */
const struct attribute_group *kiln_dev_groups[] = {
	&kiln_attr_group,
	NULL
};

int kiln_hwmon_init(struct kiln_device *kdev)
{
	struct device *hwmon;

	hwmon = devm_hwmon_device_register_with_info(&kdev->pdev->dev, "kiln",
						     kdev, &kiln_hwmon_chip,
						     NULL);
	return PTR_ERR_OR_ZERO(hwmon);
}
