"""gridtopo.quality"""
