"""Build hook for the optional compiled kernel of F; all metadata lives in pyproject.toml.

The extension is optional: where no C compiler is found the install goes on and refvps uses
its NumPy kernel, which gives the same numbers (tests/test_metrics_exact.py runs both).
"""
from setuptools import Extension, setup

setup(ext_modules=[Extension("refvps.metrics._fastf", ["refvps/metrics/_fastf.c"],
                             optional=True)])
