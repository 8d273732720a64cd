"""Data in and out: document readers, bundled corpora, atomic file writing."""
