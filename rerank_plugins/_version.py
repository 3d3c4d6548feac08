"""The package version, written once; a leaf module so anything can read it without importing the core."""

__all__ = ["__version__"]

__version__ = "0.1.0"
