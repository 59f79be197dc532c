"""polyrelay: one OpenAI-format interface to many AI providers."""
__version__ = "0.1.0"
