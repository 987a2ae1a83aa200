"""gridtopo.exports"""
