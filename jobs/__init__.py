"""RQ entry points: thin functions that load rows by id, call `bot` code, save results.

They run inside the app context that `jobs.worker` pushes before the work loop.
"""
