"""Corpus sources, preparation, vocabularies and the batch pipeline."""
