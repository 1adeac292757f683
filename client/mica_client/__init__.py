"""Command-line client of a Mica challenge site (``mica --help``)."""

__version__ = "0.1.0"
