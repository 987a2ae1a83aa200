"""Reconciliation: decide the links of the 站-线-变-户 chain between the two systems."""
