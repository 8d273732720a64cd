__version__ = "0.13.0"
# Version of the on-disk model format; bumped when saved files change (older ones load through saetm.migrate).
FORMAT_VERSION = 2
