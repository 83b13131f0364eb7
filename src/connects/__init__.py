"""connects: the Connects (bid-credit) engine of a freelance marketplace."""

__version__ = "0.1.0"
