"""vtr: vision-token reduction for multimodal LLMs (engine, searches, methods, testbed)."""
__version__ = "0.1.0"
