"""The simulated field device and flaky network now live in local/field_device.py (the chaos run
drives them too); re-exported here for the tests."""

from local.field_device import CENT, Fault, FlakyNetwork, LocalRecord, QueuedOperation, SimulatedDevice

__all__ = ["CENT", "Fault", "FlakyNetwork", "LocalRecord", "QueuedOperation", "SimulatedDevice"]
