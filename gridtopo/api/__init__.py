"""gridtopo.api"""
