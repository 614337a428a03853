"""sitrep's corpus engine: ingest, chunk, embed, store and search news articles."""
