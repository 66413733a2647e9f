"""Shouwang (守望): watching over elderly people who live alone through their utility meters."""

__version__ = "0.1.0"
