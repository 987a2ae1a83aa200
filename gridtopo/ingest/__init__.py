"""gridtopo.ingest"""
