"""The single-host Docker deploy engine: one deploy of one service, phase by phase (deployment), and its
parts: source, images, provide, release, cutover, handover, proxy and proxy_config, probe, leftovers, and
what a deploy would change (changes). Stdlib only.
"""
