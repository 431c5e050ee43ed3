"""Templates -> files: the workflows, the vendored step package and manifest.json (files), written only when
changed or reported stale (output), and the mermaid graphs of `wfgen graph` (graph). Pure but for output.
"""
