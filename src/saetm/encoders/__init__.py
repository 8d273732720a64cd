"""Documents → embeddings: text encoders and the on-disk embedding cache."""
