"""gridtopo.topology"""
