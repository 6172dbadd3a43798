"""Wrappers of published models. Each module imports torch and upstream code only in ``load()``."""
