"""Editing what a creator drew: style adjustment (an attribute moved by a requested amount, class kept) and
image-to-image (SDEdit). The formulas that measure style live in :mod:`artdirector.editing.attributes`."""
