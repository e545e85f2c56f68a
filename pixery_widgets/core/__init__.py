"""The core layer: what every other layer stands on.

Errors, configuration (the one place ``.env`` is read), the model catalog, the
request schema (each request field declared once), shared types, images, the
shared HTTP client and the async helpers. It imports nothing of the package
above it; import-linter checks that in CI (``pyproject.toml``, ``[tool.importlinter]``).
"""
