"""zerotek-cw-reconciler: ZeroTek licence usage -> ConnectWise PSA agreement additions."""

__version__ = "0.1.0"
