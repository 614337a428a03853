"""Loaders turn one source (file, folder, URL, feed, JSON records) into :class:`~retrieval.documents.Article` objects."""
