"""The manifest pipeline: services.toml -> validated model -> one environment -> the resolved JSON
the steps read.

model (the schema) · validate (load, check, one `file:line: key: message` per problem; locate, suggest) ·
environments · resolve (every default filled in) · loading (what a command acts on).
"""
