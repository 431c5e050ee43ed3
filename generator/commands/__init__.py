"""One module per command that is not a pipeline of its own (init, plan, rollback, status): cli.py declares
the options and calls the module's one function, which returns an exit code.
"""
