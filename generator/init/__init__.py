"""What `wfgen init` drafts from a project: a compose file (compose, compose_file, compose_keys) or a folder
scan (scan) becomes a ProjectDraft (draft), then the commented text of services.toml (toml).
"""
