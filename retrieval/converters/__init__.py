"""Converters: documents a support team already has (PDF, Word, HTML, plain text) as
titled sections of text, one module per format behind one protocol
(:class:`~retrieval.converters.base.Converter`), chosen by suffix in ``router.py``; files of
many documents (help-center exports, :class:`~retrieval.converters.base.ExportReader`) are
recognised there by content. ``retrieval.passages`` turns their sections into passages."""
