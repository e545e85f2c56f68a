"""The session layer: what a user's session does, in plain Python.

Generate, validation, batch planning and running (``scheduler`` for a pool of
servers), the server watchers (``pool_watcher``: one per server, combined), the
model-menu rule, the ledger, progress in words and the panel's controller.
It uses the archive and the providers below it and never loads ipywidgets, so
all of it is testable without a kernel or a browser.
"""
