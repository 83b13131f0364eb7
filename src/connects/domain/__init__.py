"""The domain core: plain Python, no I/O.

Everything here imports only the standard library and itself: the rules of Connects
(lots, spending order, expiry, cycles, rollover, who may do what) live here, and the
storage, HTTP and CLI layers call into them.
"""
