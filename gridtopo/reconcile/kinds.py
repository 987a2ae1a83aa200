"""The link kinds of the chain, lowest entity first: what reconciliation decides.

>>> LINK_KINDS[0]
'customer_transformer'
"""

LINK_KINDS = ("customer_transformer", "area_transformer", "transformer_feeder", "feeder_station")
