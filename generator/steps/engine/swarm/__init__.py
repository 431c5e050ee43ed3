"""The swarm engine: a Docker Swarm driven through a manager's docker CLI (delivery), the stack files it
deploys (stack), the proxy as a global service (proxy), and what runs, read as JSON (state). Stdlib only.
"""
