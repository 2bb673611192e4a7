# SPDX-License-Identifier: MIT
"""Kiln K1 as a PyTorch device (docs/pytorch.md).

    import torch, kiln_torch
    dev = kiln_torch.device()            # torch.device for Kiln device 0
    x = torch.randn(64, 64).to(dev)
    y = torch.relu(x @ x).cpu()

Kiln is PyTorch's PrivateUse1 backend. torch 1.13 (Debian 12) cannot rename it, so
the device prints as ``privateuseone:0`` there; with torch >= 2.1 it is renamed
``kiln`` and ``torch.device("kiln")`` works too.
"""
import sys

import torch

from . import _C
from ._C import (DeviceLostError, KilnError, current_device, current_stream,  # noqa: F401
                 device_count, device_stats, diagnose, empty_cache, fallback_counts,
                 memory_stats, new_stream, op_counts, reset_counts,
                 reset_peak_memory_stats, set_device, set_stream, synchronize)

if hasattr(torch.utils, "rename_privateuse1_backend"):
    torch.utils.rename_privateuse1_backend("kiln")
    # torch 2.x imports torch.<backend> when it first initialises the device (and looks up
    # is_available, current_device, device_count there): torch.kiln is this module.
    torch._register_device_module("kiln", sys.modules[__name__])
    BACKEND = "kiln"
else:
    BACKEND = "privateuseone"

__all__ = ["BACKEND", "DeviceLostError", "KilnError", "current_device", "current_stream",
           "device", "device_count", "device_stats", "diagnose", "empty_cache",
           "fallback_counts", "is_available", "max_memory_allocated", "memory_allocated",
           "memory_reserved", "memory_stats", "new_stream", "op_counts", "reset_counts",
           "reset_peak_memory_stats", "set_device", "set_stream", "synchronize"]


def device(index=0):
    """The torch.device of Kiln device `index`."""
    return torch.device(BACKEND, index)


def is_available():
    return _C.device_count() > 0


def memory_allocated(device=-1):
    """Bytes of device memory held by live tensors (in 4 KiB/64 KiB-rounded blocks)."""
    return _C.memory_stats(_index(device))["allocated_bytes"]


def max_memory_allocated(device=-1):
    return _C.memory_stats(_index(device))["max_allocated_bytes"]


def memory_reserved(device=-1):
    """Bytes the caching allocator holds: live tensors plus cached free blocks."""
    return _C.memory_stats(_index(device))["reserved_bytes"]


def _index(device):
    if isinstance(device, torch.device):
        return device.index if device.index is not None else -1
    return device
