__version__ = "0.8.0"
# Version of the on-disk model format; bumped when saved files change incompatibly.
FORMAT_VERSION = 1
