"""What the edge gateway and the hub must agree on, and nothing else.

Pure code: no I/O, no imports from ``edge`` or ``hub``.
"""
