"""Captions of every window at registered levels (statistical, structural, semantic) and their faithfulness check."""
