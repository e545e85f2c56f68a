"""The session layer: what a user's session does, in plain Python.

Generate, validation, batch planning and running, the server watcher, the
model-menu rule, the ledger, progress in words and the panel's controller.
It uses the archive and the providers below it and never loads ipywidgets, so
all of it is testable without a kernel or a browser.
"""
