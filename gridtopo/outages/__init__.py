"""Outages: events over the normal state, trouble-call prediction, customers' contacts."""
